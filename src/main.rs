//! The `wsiview` binary: command-line interface and viewer; see `cli.rs`.

mod cli;
mod cli_registry;

/// Process start, for the viewer's first-frame and completion timings.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn main() -> std::process::ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    cli::main()
}
