//! Equity of service and the figures fit to publish: turnaround broken down by ethnic category and
//! by IMD quintile, per site and network-wide, and per-site workload — all with small-number
//! suppression.
//!
//! Rules (README "Consolidating reports"; docs/report-schema.md "Counting across sites"):
//! - Only signed-out reports (final or amended) are counted. A cell's `n` is its number of
//!   signed-out reports; its median and within-7/10-day percentages follow the per-site rules
//!   ([`SiteStats`]: median of whole days, percentages 0–100 with one decimal).
//! - A table's rows are the sites (every site with any report) then the network; its columns are
//!   the categories present among signed-out reports, "not recorded" for those without one (when
//!   there are such), then "all".
//! - Primary suppression: a cell with `n` < [`MIN_CELL`] (zero included) is suppressed
//!   ([`Suppressed::Small`], shown as "<10").
//! - Secondary (complementary) suppression: every row (its category cells and its "all" cell)
//!   and every column (its site cells and its network cell) is a sum, and sums can be combined,
//!   so it is not enough that no single sum has exactly one suppressed cell. View the table as a
//!   bipartite graph: a node per row (each site and the network) and per column (each category
//!   and "all"), an edge per suppressed cell joining its row and its column. A suppressed count
//!   can be worked out exactly from the shown figures if and only if its edge is a bridge (lies on
//!   no cycle of suppressed cells); on a cycle, adding and subtracting the same amount around it
//!   keeps every sum. So while some suppressed cell is a bridge (the first in table order), one
//!   more cell is suppressed ([`Suppressed::Complementary`], shown as "suppressed"): the smallest
//!   shown cell that closes a cycle through the bridge (one joining the suppressed cells reached
//!   from either end of it); when no single cell does, the smallest shown cell touching the
//!   suppressed cells reached from either end, which extends them. Parts come before totals and
//!   then the smaller count, the first in table order on a tie. This repeats until no suppressed
//!   cell is a bridge. (A sum of one row or column only, such as the published workload, is the
//!   same graph with the other side a single node: any two suppressed cells of it form a cycle.)
//! - A suppressed cell carries no figures at all: no `n`, median or percentage.
//! - The "all" column of both tables and the published workload ([`PublicWorkload`]) count the
//!   same signed-out reports per site and network-wide, so each such total is hidden in all three
//!   or shown in all three: a total hidden in any of them is hidden in the others too, and the
//!   three are suppressed again until they agree ([`published`]; checked by a test over random
//!   sets).
//!
//! Everything here is computed from [`ReportRow`]s, so the registry's consolidation gets the same
//! tables from its rows.

use std::collections::BTreeSet;

use crate::stats::FastMap;

use super::{ReportRow, SiteStats};
use crate::report::schema::{imd_quintile, ETHNIC_CATEGORIES};

/// The smallest number of reports a published cell may count: cells below it are suppressed.
pub const MIN_CELL: usize = 10;
/// The column of signed-out reports without the dimension recorded.
pub const NOT_RECORDED: &str = "not recorded";
/// The column of every signed-out report of the row.
pub const ALL: &str = "all";

/// Why a cell's figures are not shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppressed {
    /// Fewer than [`MIN_CELL`] reports (primary suppression); shown as "<10".
    Small,
    /// At least [`MIN_CELL`] reports, hidden so that no suppressed cell can be worked out from
    /// the shown figures by adding and subtracting sums (secondary suppression); shown as
    /// "suppressed".
    Complementary,
}

impl Suppressed {
    /// What a table shows in place of the figures: "<10" or "suppressed".
    pub fn marker(self) -> &'static str {
        match self {
            Suppressed::Small => "<10",
            Suppressed::Complementary => "suppressed",
        }
    }
}

/// A published cell: its figures, or only why they are hidden.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<T> {
    /// The figures, from at least [`MIN_CELL`] reports.
    Shown(T),
    /// Nothing but the reason.
    Suppressed(Suppressed),
}

/// The figures of one shown equity cell, over its signed-out reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EquityFigures {
    /// Signed-out reports (at least [`MIN_CELL`]).
    pub n: usize,
    /// Median turnaround in calendar days (mean of the two middle values for an even count).
    pub turnaround_days_median: Option<f64>,
    /// Percentage (0–100, one decimal) with a turnaround of at most 7 days.
    pub within_7_days_pct: Option<f64>,
    /// Percentage (0–100, one decimal) with a turnaround of at most 10 days.
    pub within_10_days_pct: Option<f64>,
}

/// What an equity table breaks reports down by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dimension {
    /// `equity.ethnic_category`: columns are NHS ETHNIC CATEGORY codes, in the Data Dictionary's
    /// order (codes not in it after them, alphabetically).
    #[default]
    EthnicCategory,
    /// `equity.imd_decile` as quintiles: columns "1" (most deprived fifth) … "5".
    ImdQuintile,
}

impl Dimension {
    /// The key of `summary.json` and the table's name: `ethnic_category` or `imd_quintile`.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::EthnicCategory => "ethnic_category",
            Dimension::ImdQuintile => "imd_quintile",
        }
    }

    /// The column a report falls in ([`NOT_RECORDED`] when the field is absent or out of range).
    fn column(self, row: &ReportRow) -> &str {
        const QUINTILES: [&str; 5] = ["1", "2", "3", "4", "5"];
        let value = match self {
            Dimension::EthnicCategory => row.ethnic_category.as_deref().map(str::trim),
            Dimension::ImdQuintile => row
                .imd_decile
                .and_then(imd_quintile)
                .and_then(|q| QUINTILES.get(usize::from(q).wrapping_sub(1)))
                .copied(),
        };
        value.filter(|v| !v.is_empty()).unwrap_or(NOT_RECORDED)
    }

    /// Sort key of a column: known codes in order, then others, then "not recorded", then "all".
    fn order(self, column: &str) -> (usize, String) {
        let rank = match column {
            ALL => usize::MAX,
            NOT_RECORDED => usize::MAX - 1,
            _ => match self {
                Dimension::EthnicCategory => {
                    ETHNIC_CATEGORIES.iter().position(|(c, _, _)| *c == column).unwrap_or(ETHNIC_CATEGORIES.len())
                }
                Dimension::ImdQuintile => column.parse().unwrap_or(usize::MAX - 2),
            },
        };
        (rank, column.to_string())
    }

    /// A column's meaning for a heading's tooltip: the ethnic category's name, "most deprived
    /// fifth" …; empty when there is nothing to add.
    pub fn meaning(self, column: &str) -> String {
        match self {
            Dimension::EthnicCategory => ETHNIC_CATEGORIES
                .iter()
                .find(|(c, _, _)| *c == column)
                .map(|(_, meaning, _)| meaning.to_string())
                .unwrap_or_default(),
            Dimension::ImdQuintile => match column {
                "1" => "most deprived fifth".into(),
                "5" => "least deprived fifth".into(),
                _ => String::new(),
            },
        }
    }
}

/// One breakdown: a row per site and one for the network, a cell per column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EquityTable {
    /// What the columns are.
    pub dimension: Dimension,
    /// Column keys: codes or quintiles present, then [`NOT_RECORDED`] when present, then [`ALL`].
    pub columns: Vec<String>,
    /// Per site (trimmed code, sorted), its cells in column order.
    pub sites: Vec<(String, Vec<Cell<EquityFigures>>)>,
    /// Every site together, in column order.
    pub network: Vec<Cell<EquityFigures>>,
}

/// The two equity breakdowns of a consolidation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EquityTables {
    /// By NHS ETHNIC CATEGORY code.
    pub ethnic_category: EquityTable,
    /// By IMD quintile.
    pub imd_quintile: EquityTable,
}

/// One site's workload as published: counts and turnaround of a shown cell.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadFigures {
    /// Every report, drafts included.
    pub reports: usize,
    /// Signed-out reports (at least [`MIN_CELL`]).
    pub signed_out: usize,
    /// Median turnaround in calendar days.
    pub turnaround_days_median: Option<f64>,
    /// Percentage (0–100, one decimal) with a turnaround of at most 7 days.
    pub within_7_days_pct: Option<f64>,
    /// Percentage (0–100, one decimal) with a turnaround of at most 10 days.
    pub within_10_days_pct: Option<f64>,
}

/// Per-site and network workload fit to publish. A cell is suppressed when its signed-out
/// reports number fewer than [`MIN_CELL`] (and so when its reports do), the sites and the
/// network form one sum for complementary suppression (ordered by signed-out reports), and a
/// total hidden in either equity table is hidden here too.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PublicWorkload {
    /// Per site (trimmed code, sorted).
    pub sites: Vec<(String, Cell<WorkloadFigures>)>,
    /// Every site together.
    pub network: Cell<WorkloadFigures>,
}

impl<T> Default for Cell<T> {
    fn default() -> Self {
        Cell::Suppressed(Suppressed::Small)
    }
}

/// A sum among cells (indices into a list of counts): the parts add up to the total.
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    /// The cells that add up.
    pub parts: Vec<usize>,
    /// Their sum's cell.
    pub total: usize,
}

/// Primary and complementary suppression of cells with these counts under these sums (module
/// rules); None for a cell that may be shown.
pub fn suppress(counts: &[usize], relations: &[Relation]) -> Vec<Option<Suppressed>> {
    suppress_with(counts, relations, &vec![false; counts.len()])
}

/// [`suppress`], with the cells marked in `forced` hidden from the start (as complementary when
/// they are not small). Each cell should belong to at most two sums, as a grid's cells do.
pub fn suppress_with(counts: &[usize], relations: &[Relation], forced: &[bool]) -> Vec<Option<Suppressed>> {
    let graph = Graph::new(counts.len(), relations);
    let mut marks: Vec<Option<Suppressed>> = counts
        .iter()
        .zip(forced.iter().chain(std::iter::repeat(&false)))
        .map(|(&n, &force)| match (n < MIN_CELL, force) {
            (true, _) => Some(Suppressed::Small),
            (false, true) => Some(Suppressed::Complementary),
            (false, false) => None,
        })
        .collect();
    while let Some(cell) = graph.first_bridge(&marks).and_then(|b| graph.complement(b, counts, &marks)) {
        marks[cell] = Some(Suppressed::Complementary);
    }
    marks
}

/// The sums as a graph: a node per sum and one more (`ground`) for every cell's missing second
/// sum; a cell is an edge between the (up to two) sums it belongs to.
struct Graph {
    /// Per cell, its two ends.
    ends: Vec<(usize, usize)>,
    /// Per cell, whether it is the total of some sum.
    total: Vec<bool>,
    /// Per node (sums, then ground), the cells at it.
    cells_at: Vec<Vec<usize>>,
}

impl Graph {
    fn new(cells: usize, relations: &[Relation]) -> Graph {
        let ground = relations.len();
        let mut sums: Vec<Vec<usize>> = vec![Vec::new(); cells];
        let mut total = vec![false; cells];
        for (i, relation) in relations.iter().enumerate() {
            for &cell in relation.parts.iter().chain([&relation.total]) {
                if let Some(list) = sums.get_mut(cell) {
                    list.push(i);
                }
            }
            if let Some(t) = total.get_mut(relation.total) {
                *t = true;
            }
        }
        let ends: Vec<(usize, usize)> =
            sums.iter().map(|s| (s.first().copied().unwrap_or(ground), s.get(1).copied().unwrap_or(ground))).collect();
        let mut cells_at = vec![Vec::new(); ground + 1];
        for (cell, &(a, b)) in ends.iter().enumerate() {
            cells_at[a].push(cell);
            if b != a {
                cells_at[b].push(cell);
            }
        }
        Graph { ends, total, cells_at }
    }

    /// Nodes reached from `from` along hidden cells other than `skip`.
    fn reach(&self, marks: &[Option<Suppressed>], skip: usize, from: usize) -> Vec<bool> {
        let mut seen = vec![false; self.cells_at.len()];
        seen[from] = true;
        let mut queue = vec![from];
        while let Some(node) = queue.pop() {
            for &cell in &self.cells_at[node] {
                if cell == skip || marks[cell].is_none() {
                    continue;
                }
                let (a, b) = self.ends[cell];
                let next = if a == node { b } else { a };
                if !seen[next] {
                    seen[next] = true;
                    queue.push(next);
                }
            }
        }
        seen
    }

    /// Whether the hidden `cell` is a bridge: on no cycle of hidden cells, so worked out exactly.
    fn is_bridge(&self, marks: &[Option<Suppressed>], cell: usize) -> bool {
        let (a, b) = self.ends[cell];
        marks[cell].is_some() && a != b && !self.reach(marks, cell, a)[b]
    }

    /// The first hidden cell (in index order) that is a bridge.
    fn first_bridge(&self, marks: &[Option<Suppressed>]) -> Option<usize> {
        (0..self.ends.len()).find(|&cell| self.is_bridge(marks, cell))
    }

    /// The cell to hide for the bridge (module rules): the smallest shown cell joining the hidden
    /// cells reached from its two ends, else the smallest shown cell touching either, else the
    /// smallest shown cell; parts before totals, then the smaller count, then the first.
    fn complement(&self, bridge: usize, counts: &[usize], marks: &[Option<Suppressed>]) -> Option<usize> {
        let (a, b) = self.ends[bridge];
        let (from_a, from_b) = (self.reach(marks, bridge, a), self.reach(marks, bridge, b));
        let shown = || (0..self.ends.len()).filter(|&c| marks[c].is_none());
        let key = |&c: &usize| (self.total[c], counts[c], c);
        let joins = |c: &usize| {
            let (x, y) = self.ends[*c];
            (from_a[x] && from_b[y]) || (from_a[y] && from_b[x])
        };
        let touches = |c: &usize| {
            let (x, y) = self.ends[*c];
            from_a[x] || from_a[y] || from_b[x] || from_b[y]
        };
        shown()
            .filter(joins)
            .min_by_key(key)
            .or_else(|| shown().filter(touches).min_by_key(key))
            .or_else(|| shown().min_by_key(key))
    }
}

/// The sums of a `rows` × `columns` grid (cell `r * columns + c`) whose last row is the total of
/// the others and whose last column is the total of the others.
pub fn grid_relations(rows: usize, columns: usize) -> Vec<Relation> {
    let mut relations = Vec::new();
    for r in 0..rows {
        let parts = (0..columns.saturating_sub(1)).map(|c| r * columns + c).collect();
        relations.push(Relation { parts, total: r * columns + columns - 1 });
    }
    for c in 0..columns {
        let parts = (0..rows.saturating_sub(1)).map(|r| r * columns + c).collect();
        relations.push(Relation { parts, total: (rows - 1) * columns + c });
    }
    relations.retain(|r| !r.parts.is_empty());
    relations
}

/// Median and within-7/10-day shares of turnarounds (days), by the per-site rules.
fn turnaround(days: Vec<i64>) -> SiteStats {
    let mut stats = SiteStats::default();
    if !days.is_empty() {
        stats.set_turnaround(days);
    }
    stats
}

/// The sites of the rows, trimmed and sorted.
fn sites(rows: &[ReportRow]) -> Vec<String> {
    let distinct: FastMap<&str, ()> = rows.iter().map(|r| (r.site.as_str(), ())).collect();
    distinct.into_keys().collect::<BTreeSet<_>>().into_iter().map(str::to_string).collect()
}

/// The counts and turnarounds of one breakdown, before suppression: a `sites + 1` × `columns`
/// grid (cell `r * width + c`), the network last, "all" the last column.
struct EquityGrid {
    dimension: Dimension,
    sites: Vec<String>,
    columns: Vec<String>,
    counts: Vec<usize>,
    days: Vec<Vec<i64>>,
}

impl EquityGrid {
    /// Count the signed-out rows by site and column.
    fn new(rows: &[ReportRow], dimension: Dimension) -> EquityGrid {
        let signed: Vec<&ReportRow> = rows.iter().filter(|r| r.status.is_signed_out()).collect();
        let sites = sites(rows);
        let distinct: FastMap<&str, ()> = signed.iter().map(|r| (dimension.column(r), ())).collect();
        let mut columns: Vec<String> = distinct.into_keys().map(str::to_string).collect();
        columns.sort_by_key(|c| dimension.order(c));
        columns.push(ALL.to_string());
        let (height, width) = (sites.len() + 1, columns.len());
        let site_index: FastMap<&str, usize> = sites.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        let column_index: FastMap<&str, usize> = columns.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let mut counts = vec![0usize; height * width];
        let mut days: Vec<Vec<i64>> = vec![Vec::new(); height * width];
        for row in signed {
            let (Some(&r), Some(&c)) = (site_index.get(row.site.as_str()), column_index.get(dimension.column(row)))
            else {
                continue;
            };
            for cell in [r * width + c, r * width + width - 1, (height - 1) * width + c, height * width - 1] {
                counts[cell] += 1;
                days[cell].extend(row.turnaround_days);
            }
        }
        EquityGrid { dimension, sites, columns, counts, days }
    }

    /// The cell of row `r`'s "all" column.
    fn all_cell(&self, r: usize) -> usize {
        r * self.columns.len() + self.columns.len() - 1
    }

    /// Suppress the grid (module rules), hiding from the start the totals of the rows (sites then
    /// the network) marked in `hidden_totals`.
    fn suppress(&self, hidden_totals: &[bool]) -> Vec<Option<Suppressed>> {
        let mut forced = vec![false; self.counts.len()];
        for (r, _) in hidden_totals.iter().enumerate().filter(|(_, &h)| h) {
            if let Some(f) = forced.get_mut(self.all_cell(r)) {
                *f = true;
            }
        }
        suppress_with(&self.counts, &grid_relations(self.sites.len() + 1, self.columns.len()), &forced)
    }

    /// The published table under these marks.
    fn table(self, marks: &[Option<Suppressed>]) -> EquityTable {
        let (height, width) = (self.sites.len() + 1, self.columns.len());
        let mut cells: Vec<Cell<EquityFigures>> = self
            .counts
            .iter()
            .zip(self.days)
            .zip(marks)
            .map(|((&n, days), mark)| match mark {
                Some(why) => Cell::Suppressed(*why),
                None => {
                    let s = turnaround(days);
                    Cell::Shown(EquityFigures {
                        n,
                        turnaround_days_median: s.turnaround_days_median,
                        within_7_days_pct: s.within_7_days_pct,
                        within_10_days_pct: s.within_10_days_pct,
                    })
                }
            })
            .collect();
        let network = cells.split_off((height - 1) * width);
        let mut per_site = cells.into_iter();
        let sites = self.sites.into_iter().map(|s| (s, per_site.by_ref().take(width).collect())).collect();
        EquityTable { dimension: self.dimension, columns: self.columns, sites, network }
    }
}

/// The workload counts per site and for the network (last), before suppression.
struct WorkloadCounts {
    sites: Vec<String>,
    reports: Vec<usize>,
    signed_out: Vec<usize>,
    days: Vec<Vec<i64>>,
}

impl WorkloadCounts {
    /// Count every row and the signed-out ones by site.
    fn new(rows: &[ReportRow]) -> WorkloadCounts {
        let sites = sites(rows);
        let index: FastMap<&str, usize> = sites.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        let network = sites.len();
        let (mut reports, mut signed_out) = (vec![0usize; network + 1], vec![0usize; network + 1]);
        let mut days: Vec<Vec<i64>> = vec![Vec::new(); network + 1];
        for row in rows {
            let Some(&i) = index.get(row.site.as_str()) else { continue };
            for cell in [i, network] {
                reports[cell] += 1;
                if row.status.is_signed_out() {
                    signed_out[cell] += 1;
                    days[cell].extend(row.turnaround_days);
                }
            }
        }
        WorkloadCounts { sites, reports, signed_out, days }
    }

    /// Suppress the one sum (sites add up to the network), hiding `hidden_totals` from the start.
    fn suppress(&self, hidden_totals: &[bool]) -> Vec<Option<Suppressed>> {
        let network = self.sites.len();
        let relation = Relation { parts: (0..network).collect(), total: network };
        suppress_with(&self.signed_out, &[relation], hidden_totals)
    }

    /// The published workload under these marks.
    fn table(self, marks: &[Option<Suppressed>]) -> PublicWorkload {
        let mut cells: Vec<Cell<WorkloadFigures>> = marks
            .iter()
            .zip(self.days)
            .enumerate()
            .map(|(i, (mark, days))| match mark {
                Some(why) => Cell::Suppressed(*why),
                None => {
                    let s = turnaround(days);
                    Cell::Shown(WorkloadFigures {
                        reports: self.reports[i],
                        signed_out: self.signed_out[i],
                        turnaround_days_median: s.turnaround_days_median,
                        within_7_days_pct: s.within_7_days_pct,
                        within_10_days_pct: s.within_10_days_pct,
                    })
                }
            })
            .collect();
        let network = cells.pop().unwrap_or_default();
        PublicWorkload { sites: self.sites.into_iter().zip(cells).collect(), network }
    }
}

/// Both equity tables and the public workload, suppressed together (module rules): each table is
/// suppressed with every total (site or network, signed-out reports) hidden that any of the three
/// hides, again until the three hide the same totals.
pub fn published(rows: &[ReportRow]) -> (EquityTables, PublicWorkload) {
    let (ethnic, imd) =
        (EquityGrid::new(rows, Dimension::EthnicCategory), EquityGrid::new(rows, Dimension::ImdQuintile));
    let workload = WorkloadCounts::new(rows);
    let mut hidden = vec![false; workload.sites.len() + 1];
    loop {
        let (ethnic_marks, imd_marks) = (ethnic.suppress(&hidden), imd.suppress(&hidden));
        let workload_marks = workload.suppress(&hidden);
        let next: Vec<bool> = (0..hidden.len())
            .map(|r| {
                workload_marks[r].is_some()
                    || ethnic_marks[ethnic.all_cell(r)].is_some()
                    || imd_marks[imd.all_cell(r)].is_some()
            })
            .collect();
        if next == hidden {
            let tables =
                EquityTables { ethnic_category: ethnic.table(&ethnic_marks), imd_quintile: imd.table(&imd_marks) };
            return (tables, workload.table(&workload_marks));
        }
        hidden = next;
    }
}

/// One breakdown of the signed-out rows (module rules), suppressed together with the others
/// ([`published`]).
pub fn equity_table(rows: &[ReportRow], dimension: Dimension) -> EquityTable {
    let tables = published(rows).0;
    match dimension {
        Dimension::EthnicCategory => tables.ethnic_category,
        Dimension::ImdQuintile => tables.imd_quintile,
    }
}

/// Both breakdowns of the rows ([`published`]).
pub fn equity_tables(rows: &[ReportRow]) -> EquityTables {
    published(rows).0
}

/// Per-site and network workload fit to publish ([`PublicWorkload`], [`published`]).
pub fn public_workload(rows: &[ReportRow]) -> PublicWorkload {
    published(rows).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::Status;

    /// A signed-out row of `site` with this ethnic category, decile and turnaround.
    fn row(site: &str, ethnic: Option<&str>, decile: Option<u8>, days: i64) -> ReportRow {
        ReportRow {
            source: format!("{site}.report.json"),
            report_id: String::new(),
            case_id: String::new(),
            site: site.into(),
            status: Status::Final,
            amendments: 0,
            reviewer: String::new(),
            role: Default::default(),
            review_type: Default::default(),
            received_date: None,
            reported_at: None,
            turnaround_days: Some(days),
            category: String::new(),
            sha256: String::new(),
            ethnic_category: ethnic.map(str::to_string),
            imd_decile: decile,
        }
    }

    fn rows(site: &str, ethnic: &str, n: usize, days: i64) -> Vec<ReportRow> {
        (0..n).map(|_| row(site, Some(ethnic), None, days)).collect()
    }

    fn cell<'a>(table: &'a EquityTable, site: Option<&str>, column: &str) -> &'a Cell<EquityFigures> {
        let c = table.columns.iter().position(|k| k == column).expect("column");
        match site {
            Some(s) => &table.sites.iter().find(|(name, _)| name == s).expect("site").1[c],
            None => &table.network[c],
        }
    }

    fn n(cell: &Cell<EquityFigures>) -> Option<usize> {
        match cell {
            Cell::Shown(f) => Some(f.n),
            Cell::Suppressed(_) => None,
        }
    }

    #[test]
    fn a_cell_of_nine_is_suppressed_and_a_cell_of_ten_is_shown() {
        // Two sites with one category each: 10 at RLH (shown) and 9 at UCLH (<10).
        let mut all = rows("RLH", "A", 10, 3);
        all.extend(rows("UCLH", "A", 9, 12));
        let table = equity_table(&all, Dimension::EthnicCategory);
        assert_eq!(table.columns, ["A", "all"]);
        assert_eq!(*cell(&table, Some("UCLH"), "A"), Cell::Suppressed(Suppressed::Small));
        assert_eq!(*cell(&table, Some("UCLH"), "all"), Cell::Suppressed(Suppressed::Small));
        // RLH's 10 would give UCLH's 9 away from the network's 19: hidden as well.
        assert_eq!(*cell(&table, Some("RLH"), "A"), Cell::Suppressed(Suppressed::Complementary));
        let shown = EquityFigures {
            n: 19,
            turnaround_days_median: Some(3.0),
            within_7_days_pct: Some(52.6),
            within_10_days_pct: Some(52.6),
        };
        assert_eq!(*cell(&table, None, "A"), Cell::Shown(shown));

        // One site of 10: shown with its figures.
        let table = equity_table(&rows("RLH", "A", 10, 8), Dimension::EthnicCategory);
        let ten = EquityFigures {
            n: 10,
            turnaround_days_median: Some(8.0),
            within_7_days_pct: Some(0.0),
            within_10_days_pct: Some(100.0),
        };
        assert_eq!(*cell(&table, Some("RLH"), "A"), Cell::Shown(ten.clone()));
        assert_eq!(*cell(&table, None, "all"), Cell::Shown(ten));
        let nine = equity_table(&rows("RLH", "A", 9, 8), Dimension::EthnicCategory);
        assert!(nine.network.iter().chain(&nine.sites[0].1).all(|c| *c == Cell::Suppressed(Suppressed::Small)));
    }

    #[test]
    fn a_row_with_one_small_cell_hides_a_second_so_subtraction_reveals_nothing() {
        // RLH: A 30, M 12, N 4 (all 46). Without a second suppression N = 46 − 30 − 12.
        let mut all = rows("RLH", "A", 30, 2);
        all.extend(rows("RLH", "M", 12, 9));
        all.extend(rows("RLH", "N", 4, 11));
        let table = equity_table(&all, Dimension::EthnicCategory);
        let published: Vec<Option<usize>> = table.sites[0].1.iter().map(n).collect();
        assert_eq!(table.columns, ["A", "M", "N", "all"]);
        assert_eq!(table.sites[0].1[2], Cell::Suppressed(Suppressed::Small));
        assert_eq!(table.sites[0].1[1], Cell::Suppressed(Suppressed::Complementary), "the smallest other part");
        // The published row: the total minus the shown parts is the sum of two hidden cells,
        // not N's count.
        let total = published[3].expect("the total is shown here");
        let shown: usize = published[..3].iter().flatten().sum();
        assert_eq!(published.iter().filter(|c| c.is_none()).count(), 2);
        assert_ne!(total - shown, 4, "N is not recovered by subtraction");
        // Every sum of the published table has none or at least two hidden cells.
        for relation in grid_relations(2, 4) {
            let cells: Vec<&Cell<EquityFigures>> = relation
                .parts
                .iter()
                .chain([&relation.total])
                .map(|&i| if i < 4 { &table.sites[0].1[i] } else { &table.network[i - 4] })
                .collect();
            assert_ne!(cells.iter().filter(|c| n(c).is_none()).count(), 1, "{relation:?}");
        }
    }

    #[test]
    fn the_network_column_hides_a_second_site_so_subtraction_reveals_nothing() {
        // Category A: RLH 20, UCLH 15, KCH 3; network 38. KCH's 3 would be 38 − 20 − 15.
        let mut all = rows("RLH", "A", 20, 2);
        all.extend(rows("UCLH", "A", 15, 4));
        all.extend(rows("KCH", "A", 3, 6));
        let table = equity_table(&all, Dimension::EthnicCategory);
        let column: Vec<Option<usize>> = table.sites.iter().map(|(_, cells)| n(&cells[0])).collect();
        let network = n(&table.network[0]).expect("the network is shown");
        assert_eq!(network, 38);
        // Sites sorted: KCH, RLH, UCLH. KCH <10, UCLH (15, the smallest other) hidden too.
        assert_eq!(column, [None, Some(20), None]);
        assert_eq!(*cell(&table, Some("UCLH"), "A"), Cell::Suppressed(Suppressed::Complementary));
        let shown: usize = column.iter().flatten().sum();
        assert_ne!(network - shown, 3, "KCH is not recovered by subtraction");
    }

    #[test]
    fn a_sum_whose_parts_are_all_hidden_hides_its_total_and_ties_take_the_first() {
        let only_part = Relation { parts: vec![0], total: 1 };
        assert_eq!(suppress(&[5, 50], &[only_part]), [Some(Suppressed::Small), Some(Suppressed::Complementary)]);
        let tie = Relation { parts: vec![0, 1, 2], total: 3 };
        let marks = suppress(&[3, 12, 12, 27], &[tie]);
        assert_eq!(marks, [Some(Suppressed::Small), Some(Suppressed::Complementary), None, None]);
    }

    #[test]
    fn not_recorded_and_quintiles_are_columns() {
        let mut all = vec![row("RLH", None, Some(1), 1), row("RLH", None, Some(2), 1), row("RLH", None, Some(10), 1)];
        all.push(row("RLH", None, None, 1));
        let table = equity_table(&all, Dimension::ImdQuintile);
        assert_eq!(table.columns, ["1", "5", NOT_RECORDED, ALL]);
        let ethnic = equity_table(&all, Dimension::EthnicCategory);
        assert_eq!(ethnic.columns, [NOT_RECORDED, ALL]);
        let mut drafts = all.clone();
        drafts.iter_mut().for_each(|r| r.status = Status::Draft);
        assert_eq!(equity_table(&drafts, Dimension::ImdQuintile).columns, [ALL], "drafts are not counted");
    }

    #[test]
    fn public_workload_suppresses_small_sites_and_their_complement() {
        let mut all = rows("KCH", "A", 4, 1);
        all.extend(rows("RLH", "A", 30, 1));
        all.extend(rows("UCLH", "A", 12, 20));
        let w = public_workload(&all);
        assert_eq!(w.sites[0].1, Cell::Suppressed(Suppressed::Small));
        assert_eq!(w.sites[2].1, Cell::Suppressed(Suppressed::Complementary));
        match (&w.sites[1].1, &w.network) {
            (Cell::Shown(rlh), Cell::Shown(network)) => {
                assert_eq!((rlh.reports, network.reports, network.signed_out), (30, 46, 46));
                assert_eq!(network.within_7_days_pct, Some(73.9));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Whether each cell of the table (sites then network, row by row) is hidden.
    fn hidden(table: &EquityTable) -> Vec<bool> {
        table.sites.iter().flat_map(|(_, c)| c).chain(&table.network).map(|c| n(c).is_none()).collect()
    }

    /// The hidden cells that are bridges of the table's graph (module rules).
    fn bridges(table: &EquityTable) -> Vec<usize> {
        let hidden = hidden(table);
        let marks: Vec<Option<Suppressed>> = hidden.iter().map(|&h| h.then_some(Suppressed::Small)).collect();
        let graph = Graph::new(marks.len(), &grid_relations(table.sites.len() + 1, table.columns.len()));
        (0..marks.len()).filter(|&c| graph.is_bridge(&marks, c)).collect()
    }

    /// The rank of a matrix, by Gaussian elimination (entries are small integers).
    fn rank(mut m: Vec<Vec<f64>>) -> usize {
        let mut rank = 0;
        let width = m.first().map_or(0, Vec::len);
        for col in 0..width {
            let Some(pivot) = (rank..m.len()).find(|&r| m[r][col].abs() > 1e-9) else { continue };
            m.swap(rank, pivot);
            let top = m[rank].clone();
            for row in m.iter_mut().skip(rank + 1) {
                let factor = row[col] / top[col];
                row.iter_mut().zip(&top).for_each(|(x, t)| *x -= factor * t);
            }
            rank += 1;
        }
        rank
    }

    /// Per hidden cell of a `rows` × `columns` grid, whether the published figures (the shown
    /// cells and the sums) fix its value: its unit vector lies in the row space of the sums'
    /// equations restricted to the hidden cells.
    fn determined(hidden: &[bool], rows: usize, columns: usize) -> Vec<bool> {
        let unknowns: Vec<usize> = (0..hidden.len()).filter(|&c| hidden[c]).collect();
        let equations: Vec<Vec<f64>> = grid_relations(rows, columns)
            .iter()
            .map(|r| {
                let coefficient = |u: usize| {
                    let part = r.parts.contains(&u);
                    if part {
                        1.0
                    } else if r.total == u {
                        -1.0
                    } else {
                        0.0
                    }
                };
                unknowns.iter().map(|&u| coefficient(u)).collect()
            })
            .collect();
        let base = rank(equations.clone());
        (0..hidden.len())
            .map(|cell| {
                let Some(k) = unknowns.iter().position(|&u| u == cell) else { return false };
                let mut with = equations.clone();
                with.push((0..unknowns.len()).map(|i| if i == k { 1.0 } else { 0.0 }).collect());
                rank(with) == base
            })
            .collect()
    }

    #[test]
    fn combined_sums_cannot_recover_a_hidden_cell() {
        // Five sites, categories A–E: the nine cells of 3 each leave every row and column with
        // 0, 2 or 3 hidden cells, yet S1C = (all(S1) − S1D − S1E) − (net(A) − S3A − S4A − S5A)
        // − (net(B) − S3B − S4B − S5B) + (all(S2) − S2C − S2D − S2E).
        let small = ["S1A", "S1B", "S1C", "S2A", "S2B", "S3C", "S3D", "S4C", "S4D"];
        let mut all = Vec::new();
        for site in ["S1", "S2", "S3", "S4", "S5"] {
            for category in ["A", "B", "C", "D", "E"] {
                let count = if small.contains(&format!("{site}{category}").as_str()) { 3 } else { 20 };
                all.extend(rows(site, category, count, 5));
            }
        }
        // The checker agrees: with only those nine hidden, S1C (cell 2) is worked out.
        let mut primary = vec![false; 36];
        for (r, c) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3)] {
            primary[r * 6 + c] = true;
        }
        assert!(determined(&primary, 6, 6)[2], "S1C follows from the shown figures");
        let table = equity_table(&all, Dimension::EthnicCategory);
        assert_eq!(table.columns, ["A", "B", "C", "D", "E", "all"]);
        assert_eq!(*cell(&table, Some("S1"), "C"), Cell::Suppressed(Suppressed::Small));
        assert_eq!(bridges(&table), Vec::<usize>::new(), "every hidden cell on a cycle: {table:?}");
        let hidden = hidden(&table);
        assert!(hidden.iter().filter(|&&h| h).count() > 9, "more cells hidden");
        assert!(!determined(&hidden, 6, 6).contains(&true), "no hidden cell follows: {hidden:?}");
    }

    #[test]
    fn a_small_cell_in_a_corner_of_shown_cells_hides_a_cycle() {
        // Two sites, categories A and B: RLH A 4, the rest 20 or more. One more cell of RLH's row
        // is not enough (it would be a bridge in turn): a whole cycle is hidden.
        let mut all = rows("RLH", "A", 4, 1);
        all.extend(rows("RLH", "B", 25, 1));
        all.extend(rows("UCLH", "A", 20, 1));
        all.extend(rows("UCLH", "B", 30, 1));
        let table = equity_table(&all, Dimension::EthnicCategory);
        assert_eq!(bridges(&table), Vec::<usize>::new());
        let hidden = hidden(&table);
        assert!(!determined(&hidden, 3, 3).contains(&true), "{hidden:?}");
        // RLH A (4) with RLH B (25, the smaller part of the row) and UCLH A and B close the cycle.
        assert_eq!(hidden, [true, true, false, true, true, false, false, false, false]);
    }

    /// Which cells of the "all" column (sites then network) are hidden.
    fn hidden_totals(table: &EquityTable) -> Vec<bool> {
        let all = table.columns.len() - 1;
        table.sites.iter().map(|(_, cells)| &cells[all]).chain([&table.network[all]]).map(|c| n(c).is_none()).collect()
    }

    #[test]
    fn random_sets_leave_no_hidden_bridge_and_publish_each_total_alike() {
        // A small linear congruential generator: the same sets on every run.
        let mut seed = 12345u64;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % bound
        };
        let codes = ["A", "C", "H", "N", "Z", "99"];
        for _ in 0..200 {
            let mut all = Vec::new();
            for _ in 0..next(120) {
                let site = ["KCH", "RLH", "UCLH", "GWH"][next(4) as usize];
                let ethnic = (next(5) > 0).then(|| codes[next(codes.len() as u64) as usize]);
                let decile = (next(4) > 0).then(|| next(10) as u8 + 1);
                let mut r = row(site, ethnic, decile, next(20) as i64);
                if next(6) == 0 {
                    r.status = Status::Draft;
                }
                all.push(r);
            }
            let (ethnic, imd) =
                (equity_table(&all, Dimension::EthnicCategory), equity_table(&all, Dimension::ImdQuintile));
            for table in [&ethnic, &imd] {
                let cells: Vec<&Cell<EquityFigures>> =
                    table.sites.iter().flat_map(|(_, c)| c).chain(&table.network).collect();
                assert_eq!(bridges(table), Vec::<usize>::new(), "a hidden cell on no cycle in {table:?}");
                let (rows, columns) = (table.sites.len() + 1, table.columns.len());
                assert!(!determined(&hidden(table), rows, columns).contains(&true), "{table:?}");
                for cell in &cells {
                    if let Cell::Shown(f) = cell {
                        assert!(f.n >= MIN_CELL, "{f:?}");
                    }
                }
            }
            // The same totals (signed-out reports per site and network) appear in three tables:
            // hidden in one and shown in another would undo the suppression.
            let workload = public_workload(&all);
            let hidden_workload: Vec<bool> = workload
                .sites
                .iter()
                .map(|(_, c)| c)
                .chain([&workload.network])
                .map(|c| matches!(c, Cell::Suppressed(_)))
                .collect();
            assert_eq!(hidden_totals(&ethnic), hidden_totals(&imd));
            assert_eq!(hidden_totals(&ethnic), hidden_workload);
        }
    }
}
