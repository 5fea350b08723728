//! The `wsiview` binary: command-line interface; see `cli.rs`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
