//! `wsiview registry …`: the network's report registry on PostgreSQL (docs/registry.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use wsiview::registry::{self, Origin, Target};

/// Where the registry is, for every registry command.
#[derive(clap::Args)]
pub struct Db {
    /// The registry: a postgresql:// URI or libpq keywords ("host=… dbname=…"), without a
    /// password (use ~/.pgpass, PGPASSFILE or PGPASSWORD). Default: WSIVIEW_REGISTRY, else the
    /// PG* environment variables and service file as libpq reads them.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

impl Db {
    fn target(&self) -> anyhow::Result<Target> {
        let target = match &self.db {
            Some(text) => Target::parse(text, Origin::CommandLine)?,
            None => Target::parse(&std::env::var("WSIVIEW_REGISTRY").unwrap_or_default(), Origin::Environment)?,
        };
        Ok(target)
    }

    fn connect(&self) -> anyhow::Result<(Target, postgres::Client)> {
        let target = self.target()?;
        let client = target.connect()?;
        Ok((target, client))
    }
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Create the registry's schema, or bring it up to date (safe to run twice, or at once from
    /// two machines), and print the security set-up in force. Run as the role that owns the
    /// schema: never a site's role.
    Init {
        #[command(flatten)]
        db: Db,
    },
    /// Map a site code to the database role (created by the DBA) that publishes its reports, and
    /// grant the role what a site needs: insert and read its own site's reports, nothing else.
    AddSite {
        /// The site code, as reports carry it in "site" ("RLH").
        site: String,
        /// The database role (a login role, or a group role whose members log in).
        #[arg(long)]
        role: String,
        #[command(flatten)]
        db: Db,
    },
    /// Let a database role read every site's reports (service managers, consolidation, research).
    AddReader {
        #[arg(long)]
        role: String,
        #[command(flatten)]
        db: Db,
    },
    /// Publish report files (files, or folders searched recursively for *.report.json). Pushing
    /// again changes nothing; an amended report becomes a new version. Lists what was skipped and
    /// why; exit 1 when anything was.
    ///
    /// With no PATH: publish the viewer's queue (reports signed out while the registry could not
    /// be reached, in the per-user data folder's registry-queue/): published and unchanged ones
    /// leave the queue, refused ones go to registry-queue/refused/ with the reason, the rest stay
    /// queued when the registry goes away.
    Push {
        /// Report files or folders; none for the viewer's queue.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        db: Db,
    },
    /// Consolidate the registry's current reports into summary.json, the CSVs and summary.html,
    /// as `wsiview consolidate` does for folders.
    Consolidate {
        /// Folder for the files (created if missing).
        #[arg(long, value_name = "OUTDIR")]
        out: PathBuf,
        /// Only this site's reports.
        #[arg(long)]
        site: Option<String>,
        /// Only reports received on or after this date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Only reports received on or before this date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// As `wsiview consolidate --category-map`.
        #[arg(long, value_name = "FILE")]
        category_map: Option<PathBuf>,
        #[command(flatten)]
        db: Db,
    },
    /// Write the registry's current reports as files: OUTDIR/SITE/CASE.report.json.
    Pull {
        #[arg(long, value_name = "OUTDIR")]
        out: PathBuf,
        /// Only this site's reports.
        #[arg(long)]
        site: Option<String>,
        /// Only reports published at or after this time (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[command(flatten)]
        db: Db,
    },
}

pub fn run(command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Init { db } => init(&db),
        RegistryCommand::AddSite { site, role, db } => {
            let (target, mut client) = db.connect()?;
            let statements = registry::schema::add_site(&mut client, site.trim(), &role)?;
            println!("site {} publishes as role {role} on {}:", site.trim(), target.shown());
            statements.iter().for_each(|s| println!("  {s};"));
            Ok(())
        }
        RegistryCommand::AddReader { role, db } => {
            let (target, mut client) = db.connect()?;
            let statements = registry::schema::add_reader(&mut client, &role)?;
            println!("role {role} reads every site's reports on {}:", target.shown());
            statements.iter().for_each(|s| println!("  {s};"));
            Ok(())
        }
        RegistryCommand::Push { paths, db } if paths.is_empty() => push_queue(&db),
        RegistryCommand::Push { paths, db } => push(&paths, &db),
        RegistryCommand::Consolidate { out, site, from, to, category_map, db } => {
            let filter = registry::read::Filter {
                site,
                from: from.as_deref().map(wsiview::report::schema::parse_date).transpose().context("--from")?,
                to: to.as_deref().map(wsiview::report::schema::parse_date).transpose().context("--to")?,
                since: None,
            };
            consolidate(&out, &filter, category_map.as_deref(), &db)
        }
        RegistryCommand::Pull { out, site, since, db } => {
            let since = since.map(|s| since_time(&s)).transpose()?;
            let filter = registry::read::Filter { site, since, ..Default::default() };
            let (target, mut client) = db.connect()?;
            let outcome = registry::read::pull(&mut client, &filter, &out)?;
            for (source, problem) in &outcome.invalid {
                eprintln!("wsiview: {source}: not a valid report, not written: {problem}");
            }
            println!(
                "{} report files written, {} already up to date, from {} → {}",
                outcome.written.len(),
                outcome.unchanged,
                target.shown(),
                out.display()
            );
            if outcome.invalid.is_empty() {
                Ok(())
            } else {
                bail!("{} rows of the registry were not valid reports", outcome.invalid.len())
            }
        }
    }
}

/// The registry's current reports for `wsiview export-research --db` (`db` as `--db`, or "" for
/// WSIVIEW_REGISTRY and the PG* variables), and the rows that are not valid reports.
#[allow(clippy::type_complexity)]
pub fn current_reports(db: &str) -> anyhow::Result<(Vec<wsiview::report::Report>, Vec<(String, String)>)> {
    let db = Db { db: (!db.trim().is_empty()).then(|| db.to_string()) };
    let (_, mut client) = db.connect()?;
    let (reports, invalid) = registry::read::reports(&mut client, &registry::read::Filter::default())?;
    Ok((reports.into_iter().map(|(_, r)| r).collect(), invalid))
}

/// `--since`: an RFC 3339 time, or a date meaning its start in UTC.
fn since_time(text: &str) -> anyhow::Result<String> {
    if wsiview::report::schema::parse_timestamp(text).is_ok() {
        return Ok(text.to_string());
    }
    wsiview::report::schema::parse_date(text).context("--since: an RFC 3339 time or a date YYYY-MM-DD")?;
    Ok(format!("{text}T00:00:00Z"))
}

fn init(db: &Db) -> anyhow::Result<()> {
    let (target, mut client) = db.connect()?;
    let outcome = registry::schema::init(&mut client)?;
    if outcome.applied.is_empty() {
        println!("registry {} is up to date (schema version {})", target.shown(), outcome.version);
    }
    for (version, description) in &outcome.applied {
        println!("registry {}: applied migration {version} ({description})", target.shown());
    }
    println!("security set-up in force:");
    for line in registry::schema::security_summary(&mut client)? {
        println!("  {line}");
    }
    Ok(())
}

fn push(paths: &[PathBuf], db: &Db) -> anyhow::Result<()> {
    let (target, mut client) = db.connect()?;
    let outcome = registry::push::push(&mut client, paths)?;
    for (source, reason) in &outcome.skipped {
        eprintln!("skipped: {}: {}", wsiview::error::printable(source), reason);
    }
    let new_reports = outcome.published.iter().filter(|(_, _, v)| *v == 1).count();
    println!(
        "{} published to {} ({} new reports, {} new versions), {} unchanged, {} skipped",
        outcome.published.len(),
        target.shown(),
        new_reports,
        outcome.published.len() - new_reports,
        outcome.unchanged.len(),
        outcome.skipped.len()
    );
    if let Some(why) = &outcome.interrupted {
        bail!(
            "the registry went away after {} reports were published ({why}); {} were not sent: nothing is lost, run \
             the same push again",
            outcome.published.len(),
            outcome.not_sent.len()
        );
    }
    if !outcome.skipped.is_empty() {
        bail!("{} files were skipped (listed above)", outcome.skipped.len());
    }
    Ok(())
}

/// `wsiview registry push` with no PATH: the viewer's publish queue.
fn push_queue(db: &Db) -> anyhow::Result<()> {
    let Some(dir) = registry::queue::queue_dir() else {
        bail!("no per-user data folder (set HOME or XDG_DATA_HOME): there is no publish queue");
    };
    if registry::queue::queued_files(&dir).with_context(|| dir.display().to_string())?.is_empty() {
        println!("queue {} is empty: nothing to publish", dir.display());
        return Ok(());
    }
    let (target, mut client) = db.connect()?;
    let outcome = registry::queue::publish_queue_in(&mut client, &dir)?;
    for (id, reason) in &outcome.refused {
        eprintln!("refused: report {}: {reason}", wsiview::error::printable(id));
    }
    for (name, reason) in &outcome.invalid {
        eprintln!("invalid: {}: {reason}", wsiview::error::printable(name));
    }
    for (file, error) in &outcome.file_errors {
        eprintln!("wsiview: {}: {error} (it stays queued)", file.display());
    }
    println!(
        "queue {}: {} published to {}, {} unchanged, {} refused (in {}), {} invalid, {} still queued",
        dir.display(),
        outcome.published.len(),
        target.shown(),
        outcome.unchanged.len(),
        outcome.refused.len(),
        dir.join(registry::queue::REFUSED_FOLDER).display(),
        outcome.invalid.len(),
        outcome.still_queued.len()
    );
    if let Some(why) = &outcome.interrupted {
        bail!("the registry went away ({why}); {} reports stay queued: run it again", outcome.still_queued.len());
    }
    if !outcome.refused.is_empty() || !outcome.invalid.is_empty() {
        bail!(
            "{} queued reports were refused or invalid (listed above)",
            outcome.refused.len() + outcome.invalid.len()
        );
    }
    Ok(())
}

fn consolidate(
    out: &Path,
    filter: &registry::read::Filter,
    category_map: Option<&Path>,
    db: &Db,
) -> anyhow::Result<()> {
    use wsiview::report::category_map::CategoryMap;
    use wsiview::report::consolidate;
    let categories = match category_map {
        Some(file) => CategoryMap::built_in_extended_by(file)?,
        None => CategoryMap::built_in(),
    };
    let (target, mut client) = db.connect()?;
    let rows = registry::read::rows(&mut client, filter)?;
    let summary = consolidate::summarise(rows, &categories);
    consolidate::write_outputs(&summary, out).map_err(anyhow::Error::new)?;
    println!("{} from {} → {}", summary.headline(), target.shown(), out.display());
    // A million rows take seconds to free; the process ends here anyway.
    std::mem::forget(summary);
    Ok(())
}
