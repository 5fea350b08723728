//! The registry's tables, its migrations, and who may do what (docs/registry.md).
//!
//! Everything lives in the schema `wsiview`:
//! - `migrations(version, description, applied_at)`: which migrations ran.
//! - `sites(site, role, added_at)`: each site code and the database role that writes for it.
//! - `readers(role, added_at)`: roles that read the whole network.
//! - `report_versions`: one row per version of a report (`report_id`, `version` from 1), the report
//!   as JSON and the columns consolidation reads. Never updated or deleted: a trigger refuses both,
//!   whoever asks (and `TRUNCATE`).
//! - `current_reports`: the latest version of each report (a view that runs with the reader's
//!   rights, so row-level security applies through it).
//!
//! Row-level security is on for `report_versions`; [`add_site`] gives a site's role one policy to
//! read and one to insert rows whose `site` (and the JSON's `site`) is its own, as itself; no
//! role gets UPDATE or DELETE. [`add_reader`] gives a role one policy to read every row.

use postgres::Client;

use super::{identifier, literal, RegistryError};

/// `(version, description, SQL)`, applied in order, each once, in one transaction with the
/// others of the same run.
const MIGRATIONS: [(i32, &str, &str); 1] = [(1, "report versions, sites, readers, history kept", MIGRATION_1)];

/// The newest migration this wsiview knows: the schema version it needs.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Serialises `init` runs (`pg_advisory_xact_lock`): "wsiv" in ASCII.
const INIT_LOCK: i64 = 0x7773_6976;

const MIGRATION_1: &str = r#"
CREATE TABLE wsiview.sites (
    site text PRIMARY KEY CHECK (site = btrim(site) AND site <> ''),
    role name NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE wsiview.readers (
    role name PRIMARY KEY,
    added_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE wsiview.report_versions (
    report_id uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    site text NOT NULL,
    case_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'final', 'amended')),
    amendments integer NOT NULL CHECK (amendments >= 0),
    reviewer text NOT NULL,
    reviewer_role text NOT NULL,
    review_type text NOT NULL,
    received_date text,
    reported_at text,
    received_on date,
    turnaround_days integer,
    category text NOT NULL,
    slide_sha256 text NOT NULL,
    ethnic_category text,
    imd_decile smallint CHECK (imd_decile BETWEEN 1 AND 10),
    content_sha256 text NOT NULL,
    report json NOT NULL,
    pushed_at timestamptz NOT NULL DEFAULT now(),
    pushed_by name NOT NULL DEFAULT current_user,
    PRIMARY KEY (report_id, version)
);
CREATE INDEX report_versions_site ON wsiview.report_versions (site);
CREATE INDEX report_versions_pushed_at ON wsiview.report_versions (pushed_at);
CREATE FUNCTION wsiview.keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'report versions are history: % is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER report_versions_keep_history BEFORE UPDATE OR DELETE ON wsiview.report_versions
    FOR EACH ROW EXECUTE FUNCTION wsiview.keep_history();
CREATE TRIGGER report_versions_keep_history_truncate BEFORE TRUNCATE ON wsiview.report_versions
    FOR EACH STATEMENT EXECUTE FUNCTION wsiview.keep_history();
-- A report belongs to the site of its first version, and versions follow one another: checked
-- with the owner's view of every row (row-level security hides other sites' rows from a site).
CREATE FUNCTION wsiview.next_version_only() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog AS $$
DECLARE
    held text;
    latest integer;
BEGIN
    SELECT site, version INTO held, latest FROM wsiview.report_versions
        WHERE report_id = NEW.report_id ORDER BY version DESC LIMIT 1;
    IF FOUND AND held IS DISTINCT FROM NEW.site THEN
        RAISE EXCEPTION 'report % belongs to another site', NEW.report_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.version <> coalesce(latest, 0) + 1 THEN
        RAISE EXCEPTION 'report % is at version %: version % is not the next', NEW.report_id, coalesce(latest, 0),
            NEW.version USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION wsiview.next_version_only() FROM PUBLIC;
CREATE TRIGGER report_versions_next_version_only BEFORE INSERT ON wsiview.report_versions
    FOR EACH ROW EXECUTE FUNCTION wsiview.next_version_only();
ALTER TABLE wsiview.report_versions ENABLE ROW LEVEL SECURITY;
CREATE VIEW wsiview.current_reports WITH (security_invoker = true) AS
    SELECT DISTINCT ON (report_id) * FROM wsiview.report_versions ORDER BY report_id, version DESC;
REVOKE ALL ON ALL TABLES IN SCHEMA wsiview FROM PUBLIC;
REVOKE ALL ON SCHEMA wsiview FROM PUBLIC;
"#;

/// What [`init`] did.
#[derive(Debug)]
pub struct InitOutcome {
    /// The migrations applied by this run, `(version, description)`; empty when the schema was up
    /// to date.
    pub applied: Vec<(i32, String)>,
    /// The schema version now.
    pub version: i32,
}

/// Session settings every wsiview connection relies on.
pub(crate) fn prepare_session(client: &mut Client) -> Result<(), RegistryError> {
    client
        .batch_execute("SET standard_conforming_strings = on; SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'")
        .map_err(RegistryError::database("the session settings"))
}

/// Create the schema or bring it to [`SCHEMA_VERSION`]: safe to run twice, or from two machines at
/// once (the runs queue on an advisory lock; the second finds nothing to do). Run as the role that
/// is to own the schema.
pub fn init(client: &mut Client) -> Result<InitOutcome, RegistryError> {
    prepare_session(client)?;
    let mut tx = client.transaction().map_err(RegistryError::database("a transaction"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK]).map_err(RegistryError::database("the init lock"))?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS wsiview;
         CREATE TABLE IF NOT EXISTS wsiview.migrations (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .map_err(RegistryError::database("creating the schema wsiview"))?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM wsiview.migrations", &[])
        .map_err(RegistryError::database("the list of migrations"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(&newer) = done.iter().find(|v| **v > SCHEMA_VERSION) {
        return Err(RegistryError::Version { found: newer, needed: SCHEMA_VERSION });
    }
    let mut applied = Vec::new();
    for (version, description, sql) in MIGRATIONS.iter().filter(|(v, _, _)| !done.contains(v)) {
        tx.batch_execute(sql).map_err(RegistryError::database(format!("the migration to version {version}")))?;
        tx.execute("INSERT INTO wsiview.migrations (version, description) VALUES ($1, $2)", &[version, description])
            .map_err(RegistryError::database("recording the migration"))?;
        applied.push((*version, description.to_string()));
    }
    tx.commit().map_err(RegistryError::database("committing the migrations"))?;
    Ok(InitOutcome { applied, version: SCHEMA_VERSION })
}

/// Refuse a registry whose schema is not [`SCHEMA_VERSION`] (run before reading or writing).
pub fn check_version(client: &mut Client) -> Result<(), RegistryError> {
    prepare_session(client)?;
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM wsiview.migrations", &[]).map_err(|error| {
        match error.as_db_error().map(|d| d.code().code()) {
            // undefined_table / invalid_schema_name: never initialised.
            Some("42P01") | Some("3F000") => RegistryError::Version { found: 0, needed: SCHEMA_VERSION },
            _ => RegistryError::Database { what: "the schema version".into(), error },
        }
    })?;
    let found: i32 = row.get(0);
    if found == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(RegistryError::Version { found, needed: SCHEMA_VERSION })
    }
}

/// Site codes: what reports carry in `site`, trimmed, printable, at most 40 characters.
fn check_site(site: &str) -> Result<(), RegistryError> {
    let ok =
        !site.is_empty() && site == site.trim() && site.chars().count() <= 40 && !site.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Config(format!(
            "site code {:?} must be 1 to 40 printable characters without surrounding spaces",
            crate::error::printable(site)
        )))
    }
}

/// The role `role` exists and is neither a superuser nor exempt from row-level security (either
/// would make the site's policies meaningless).
fn check_role(client: &mut Client, role: &str) -> Result<(), RegistryError> {
    let rows = client
        .query(
            "SELECT rolsuper OR rolbypassrls OR pg_has_role(rolname, (SELECT relowner FROM pg_class \
             WHERE oid = 'wsiview.report_versions'::regclass), 'MEMBER') FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .map_err(RegistryError::database("the list of roles"))?;
    match rows.first().map(|r| r.get::<_, bool>(0)) {
        None => Err(RegistryError::Config(format!(
            "role {:?} does not exist: the database administrator creates it first (CREATE ROLE … LOGIN, or a group \
             role whose members log in)",
            crate::error::printable(role)
        ))),
        Some(true) => Err(RegistryError::Config(format!(
            "role {:?} is a superuser, bypasses row-level security or owns the registry's tables: a site's or \
             reader's role must be none of these",
            crate::error::printable(role)
        ))),
        Some(false) => Ok(()),
    }
}

/// Map `site` to the database role `role` and give the role what a site needs: read its own
/// reports, insert its own reports' versions. Mapping a site again to another role moves it (the
/// old role's policies for the site are dropped). Returns the statements applied.
pub fn add_site(client: &mut Client, site: &str, role: &str) -> Result<Vec<String>, RegistryError> {
    check_site(site)?;
    check_version(client)?;
    check_role(client, role)?;
    let (r, s) = (identifier(role), literal(site));
    let read = identifier(&format!("site {site} reads"));
    let insert = identifier(&format!("site {site} inserts"));
    let statements = vec![
        format!("GRANT USAGE ON SCHEMA wsiview TO {r}"),
        format!("GRANT SELECT ON wsiview.report_versions TO {r}"),
        // Not pushed_at or pushed_by: the database fills them in.
        format!("GRANT INSERT ({}) ON wsiview.report_versions TO {r}", super::push::COLUMNS.join(", ")),
        format!("GRANT SELECT ON wsiview.current_reports, wsiview.sites, wsiview.migrations TO {r}"),
        format!("DROP POLICY IF EXISTS {read} ON wsiview.report_versions"),
        format!("DROP POLICY IF EXISTS {insert} ON wsiview.report_versions"),
        format!("CREATE POLICY {read} ON wsiview.report_versions FOR SELECT TO {r} USING (site = {s})"),
        format!(
            "CREATE POLICY {insert} ON wsiview.report_versions FOR INSERT TO {r} \
             WITH CHECK (site = {s} AND btrim(report->>'site') = {s} AND pushed_by = current_user)"
        ),
        format!(
            "INSERT INTO wsiview.sites (site, role) VALUES ({s}, {}) ON CONFLICT (site) DO UPDATE SET role = EXCLUDED.role",
            literal(role)
        ),
    ];
    apply(client, &statements, &format!("adding site {site}"))?;
    Ok(statements)
}

/// Give `role` read access to every site's reports (service managers, consolidation, research).
/// Returns the statements applied.
pub fn add_reader(client: &mut Client, role: &str) -> Result<Vec<String>, RegistryError> {
    check_version(client)?;
    check_role(client, role)?;
    let r = identifier(role);
    let policy = identifier(&format!("reader {role}"));
    let statements = vec![
        format!("GRANT USAGE ON SCHEMA wsiview TO {r}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA wsiview TO {r}"),
        format!("DROP POLICY IF EXISTS {policy} ON wsiview.report_versions"),
        format!("CREATE POLICY {policy} ON wsiview.report_versions FOR SELECT TO {r} USING (true)"),
        format!("INSERT INTO wsiview.readers (role) VALUES ({}) ON CONFLICT (role) DO NOTHING", literal(role)),
    ];
    apply(client, &statements, &format!("adding reader {role}"))?;
    Ok(statements)
}

fn apply(client: &mut Client, statements: &[String], what: &str) -> Result<(), RegistryError> {
    let mut tx = client.transaction().map_err(RegistryError::database("a transaction"))?;
    for statement in statements {
        tx.batch_execute(statement).map_err(RegistryError::database(what))?;
    }
    tx.commit().map_err(RegistryError::database(what))
}

/// The security set-up as it is in the database: row-level security, every policy and every
/// grant on the schema's tables, one line each, for `registry init` to print.
pub fn security_summary(client: &mut Client) -> Result<Vec<String>, RegistryError> {
    let mut lines = Vec::new();
    let rls = client
        .query(
            "SELECT c.relname, c.relrowsecurity, pg_get_userbyid(c.relowner)::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'wsiview' AND c.relkind IN ('r', 'v') \
             ORDER BY c.relname",
            &[],
        )
        .map_err(RegistryError::database("the schema's tables"))?;
    for row in rls {
        let (table, secured, owner): (String, bool, String) = (row.get(0), row.get(1), row.get(2));
        let security = if secured { ", row-level security on" } else { "" };
        lines.push(format!("table wsiview.{table}: owner {owner}{security}"));
    }
    let policies = client
        .query(
            "SELECT policyname::text, cmd::text, array_to_string(roles, ',')::text, coalesce(qual, ''), \
             coalesce(with_check, '') FROM pg_policies WHERE schemaname = 'wsiview' ORDER BY policyname",
            &[],
        )
        .map_err(RegistryError::database("the policies"))?;
    for row in policies {
        let (name, cmd, roles, using, check): (String, String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let mut line = format!("policy {name:?}: {cmd} to {roles}");
        if !using.is_empty() {
            line += &format!(" using {using}");
        }
        if !check.is_empty() {
            line += &format!(" with check {check}");
        }
        lines.push(line);
    }
    let grants = client
        .query(
            "SELECT grantee::text, table_name::text, string_agg(privilege_type, ', ' ORDER BY privilege_type) \
             FROM information_schema.role_table_grants WHERE table_schema = 'wsiview' \
             AND grantee <> pg_get_userbyid((SELECT relowner FROM pg_class WHERE oid = 'wsiview.report_versions'::regclass)) \
             GROUP BY grantee, table_name ORDER BY grantee, table_name",
            &[],
        )
        .map_err(RegistryError::database("the grants"))?;
    for row in grants {
        let (grantee, table, privileges): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        lines.push(format!("grant {privileges} on wsiview.{table} to {grantee}"));
    }
    lines.push("trigger: UPDATE, DELETE and TRUNCATE of wsiview.report_versions are refused for everyone".into());
    Ok(lines)
}

/// The sites the connected role writes for (it is a member of their roles).
pub fn writable_sites(client: &mut Client) -> Result<Vec<String>, RegistryError> {
    let rows = client
        .query(
            "SELECT site FROM wsiview.sites s WHERE EXISTS \
             (SELECT 1 FROM pg_roles r WHERE r.rolname = s.role AND pg_has_role(current_user, r.oid, 'MEMBER')) \
             ORDER BY site",
            &[],
        )
        .map_err(RegistryError::database("the list of sites"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
