//! File > Open from PACS…: find slide microscopy series on a DICOMweb server (QIDO-RS, on a
//! worker) and open one by its WADO-RS URL, the way File > Open URL… opens any remote slide.
//!
//! Credentials typed into the address (`https://user:password@host/dicom-web`) are taken out of
//! the field at the first search and kept in memory until wsiview exits ([`SessionCredentials`],
//! handed from one window to the next by the app), sent only to the server they were typed for:
//! the field, the messages and the remembered address ([`PacsWindow::remembered`]) never hold
//! them. The
//! environment's credentials (`WSIVIEW_DICOMWEB_TOKEN`, `…_USER`/`…_PASSWORD`) apply otherwise.

use std::path::PathBuf;

use egui_extras::{Column, TableBuilder};

use super::job::Job;
use super::message::Level;
use crate::remote::dicomweb::{list_series, valid_uid, Auth, Filter, SeriesEntry, Server};

/// What the window asks of the app after a frame.
#[derive(Debug, PartialEq)]
pub enum PacsEvent {
    None,
    /// The window was closed (Cancel, Close or Escape).
    Closed,
    /// Remember this server address (redacted) in the persisted settings.
    Remember(String),
    /// Open this series URL (credentials included, if any) as a slide; the window closes.
    Open(PathBuf),
}

/// A search running on a worker, or its outcome.
enum Search {
    Idle,
    /// The server's address as searched (credentials included).
    Running {
        job: Job<Result<Vec<SeriesEntry>, String>>,
        base: String,
    },
    /// Series found on the server at `base` (as searched, credentials included).
    Found {
        base: String,
        series: Vec<SeriesEntry>,
    },
    Failed(String),
    /// The user cancelled the search (not an error).
    Cancelled,
}

/// User information typed into the address, kept for one server until wsiview exits; never
/// saved, shown or printed (no `Debug`).
pub struct SessionCredentials {
    /// The redacted address they were typed with: sent only there.
    server: String,
    /// `user:password` as typed (percent-encoded as in a URL).
    userinfo: String,
}

/// The File > Open from PACS… window.
pub struct PacsWindow {
    /// The server address as shown: never with credentials once a search started.
    pub address: String,
    pub study: String,
    pub accession: String,
    credentials: Option<SessionCredentials>,
    search: Search,
    /// The selected row of the table.
    selected: Option<usize>,
    focused: bool,
}

impl PacsWindow {
    /// The window, its address field filled with the remembered server, and the credentials
    /// typed in an earlier window of this session.
    pub fn new(remembered: &str, credentials: Option<SessionCredentials>) -> Self {
        PacsWindow {
            address: remembered.to_string(),
            study: String::new(),
            accession: String::new(),
            credentials,
            search: Search::Idle,
            selected: None,
            focused: false,
        }
    }

    /// The window closes: the session's credentials, for the next one.
    pub fn into_credentials(self) -> Option<SessionCredentials> {
        self.credentials
    }

    /// A search is running.
    pub fn is_searching(&self) -> bool {
        matches!(self.search, Search::Running { .. })
    }

    /// Series of the last search.
    pub fn series(&self) -> &[SeriesEntry] {
        match &self.search {
            Search::Found { series, .. } => series,
            _ => &[],
        }
    }

    /// The address to remember between runs: without credentials, query or fragment.
    pub fn remembered(&self) -> String {
        crate::remote::redact(self.address.trim())
    }

    /// Start a search of the typed address and filters on a worker. Returns the address to
    /// remember, or `None` (the reason is shown in the window).
    pub fn start_search(&mut self, ctx: &egui::Context) -> Option<String> {
        let typed = self.address.trim().to_string();
        let Some((shown, userinfo)) = split_credentials(&typed) else {
            self.search = Search::Failed("Not an address: type one starting with https:// or http://.".into());
            return None;
        };
        // Credentials leave the field at once; kept for this server only.
        if let Some(userinfo) = userinfo {
            self.credentials = Some(SessionCredentials { server: shown.clone(), userinfo });
        }
        self.address = shown.clone();
        let study = self.study.trim().to_string();
        if !study.is_empty() && !valid_uid(&study) {
            self.search = Search::Failed("Study UID: not a DICOM UID (digits and dots).".into());
            return None;
        }
        let accession = self.accession.trim().to_string();
        let filter = Filter {
            study: (!study.is_empty()).then_some(study),
            accession: (!accession.is_empty()).then_some(accession),
        };
        let base = self.with_credentials(&shown);
        let searched = base.clone();
        let job = Job::spawn(ctx, move || {
            let auth = Auth::from_env(None)?;
            let server = Server::new(&searched, auth).map_err(|e| e.to_string())?;
            list_series(&server, &filter).map_err(|e| e.to_string())
        });
        self.search = Search::Running { job, base };
        self.selected = None;
        Some(shown)
    }

    /// `shown` (a redacted address) with this session's credentials for it, if any.
    fn with_credentials(&self, shown: &str) -> String {
        match &self.credentials {
            Some(c) if c.server == shown => match shown.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://{}@{rest}", c.userinfo),
                None => shown.to_string(),
            },
            _ => shown.to_string(),
        }
    }

    fn poll(&mut self) {
        let Search::Running { job, base } = &mut self.search else { return };
        let Some(outcome) = job.try_take() else { return };
        let base = std::mem::take(base);
        self.search = match outcome {
            Ok(Ok(series)) => Search::Found { base, series },
            Ok(Err(e)) => Search::Failed(crate::error::printable(&e)),
            Err(stopped) => Search::Failed(format!("The search stopped: {stopped}")),
        };
    }

    /// Draw the window; what the app should do afterwards.
    pub fn show(&mut self, ctx: &egui::Context) -> PacsEvent {
        self.poll();
        let mut event = PacsEvent::None;
        let (mut search, mut open, mut close, mut cancel) = (false, false, false, false);
        egui::Window::new("Open from PACS")
            .collapsible(false)
            .resizable(true)
            .default_width(760.0)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                ui.label("Slide microscopy series on a DICOMweb server (QIDO-RS):");
                let enter = |ui: &egui::Ui, r: &egui::Response| r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                egui::Grid::new("pacs-fields").num_columns(2).show(ui, |ui| {
                    let label = ui.label("Server");
                    let field = egui::TextEdit::singleline(&mut self.address)
                        .hint_text("https://pacs.example/dicom-web")
                        .desired_width(460.0);
                    let r = ui.add(field).labelled_by(label.id);
                    if !self.focused {
                        r.request_focus();
                        self.focused = true;
                    }
                    search |= enter(ui, &r);
                    ui.end_row();
                    let label = ui.label("Study UID");
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut self.study).hint_text("any").desired_width(460.0))
                        .labelled_by(label.id);
                    search |= enter(ui, &r);
                    ui.end_row();
                    let label = ui.label("Accession");
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut self.accession).hint_text("any").desired_width(460.0))
                        .labelled_by(label.id);
                    search |= enter(ui, &r);
                    ui.end_row();
                });
                if super::app_files::is_plain_http(self.address.trim()) {
                    Level::Warning.label(ui, "Not encrypted: plain http:// is readable on the network.");
                }
                if self.credentials.as_ref().is_some_and(|c| c.server == self.remembered()) {
                    ui.weak("Using the user and password typed in the address for this server (kept until wsiview closes, never saved).");
                } else {
                    ui.weak("Credentials: WSIVIEW_DICOMWEB_TOKEN, or WSIVIEW_DICOMWEB_USER and _PASSWORD, or user:password@ in the address (never saved).");
                }
                ui.horizontal(|ui| {
                    let searching = self.is_searching();
                    search |= ui.add_enabled(!searching, egui::Button::new("Search")).clicked();
                    if searching {
                        ui.spinner();
                        ui.label("Searching…");
                        cancel |= ui.button("Cancel search").clicked();
                    }
                });
                ui.separator();
                self.results(ui, &mut open);
                ui.separator();
                ui.horizontal(|ui| {
                    let can_open = self.selected.is_some() && matches!(self.search, Search::Found { .. });
                    open |= ui.add_enabled(can_open, egui::Button::new("Open")).clicked();
                    close |= ui.button("Close").clicked();
                });
            });
        if ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            close = true;
        }
        if cancel {
            // Dropping the job tells the worker; its answer is not read.
            self.search = Search::Cancelled;
        }
        if search && !self.is_searching() {
            if let Some(shown) = self.start_search(ctx) {
                event = PacsEvent::Remember(shown);
            }
        }
        if open {
            if let Some(url) = self.selected_url() {
                return PacsEvent::Open(url);
            }
        }
        if close {
            return PacsEvent::Closed;
        }
        event
    }

    /// The selected series' WADO-RS URL (with this session's credentials).
    fn selected_url(&self) -> Option<PathBuf> {
        let Search::Found { base, series } = &self.search else { return None };
        let entry = series.get(self.selected?)?;
        Some(PathBuf::from(series_url(base, entry)))
    }

    /// Select a row of the table (as a click on it does).
    pub fn select(&mut self, row: usize) {
        if row < self.series().len() {
            self.selected = Some(row);
        }
    }

    fn results(&mut self, ui: &mut egui::Ui, open: &mut bool) {
        match &self.search {
            Search::Idle => {
                ui.weak("Search to list the series.");
            }
            // Said beside the spinner above.
            Search::Running { .. } => {}
            Search::Failed(e) => {
                Level::Error.label(ui, e.as_str());
            }
            Search::Cancelled => {
                ui.weak("Search cancelled.");
            }
            Search::Found { series, .. } if series.is_empty() => {
                ui.label("No slide microscopy series found.");
            }
            Search::Found { series, .. } => {
                let mut clicked = None;
                let height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
                TableBuilder::new(ui)
                    .id_salt("pacs-series")
                    .striped(true)
                    .sense(egui::Sense::click())
                    .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                    .column(Column::auto().at_least(90.0))
                    .column(Column::auto().at_least(90.0))
                    .column(Column::auto().at_least(150.0))
                    .column(Column::remainder().at_least(160.0))
                    .column(Column::auto().at_least(70.0))
                    .max_scroll_height(260.0)
                    .header(height, |mut header| {
                        for title in ["Accession", "Study date", "Study UID", "Series description", "Instances"] {
                            header.col(|ui| {
                                ui.strong(title);
                            });
                        }
                    })
                    .body(|mut body| {
                        for (i, entry) in series.iter().enumerate() {
                            body.row(height, |mut row| {
                                row.set_selected(self.selected == Some(i));
                                let text = |ui: &mut egui::Ui, s: String| {
                                    ui.add(egui::Label::new(s).selectable(false).truncate());
                                };
                                row.col(|ui| text(ui, shown(entry.accession_number.as_deref())));
                                row.col(|ui| text(ui, study_date(entry.study_date.as_deref())));
                                row.col(|ui| {
                                    ui.add(egui::Label::new(short_uid(&entry.study_instance_uid)).selectable(false))
                                        .on_hover_text(format!(
                                            "Study {}\nSeries {}",
                                            entry.study_instance_uid, entry.series_instance_uid
                                        ));
                                });
                                row.col(|ui| text(ui, shown(entry.series_description.as_deref())));
                                row.col(|ui| text(ui, entry.number_of_instances.map_or("–".into(), |n| n.to_string())));
                                let r = row.response();
                                if r.clicked() {
                                    clicked = Some((i, false));
                                }
                                if r.double_clicked() {
                                    clicked = Some((i, true));
                                }
                            });
                        }
                    });
                if let Some((i, twice)) = clicked {
                    self.selected = Some(i);
                    *open |= twice;
                }
            }
        }
    }
}

/// The address without credentials, query or fragment (and without a trailing `/`), and the
/// user information typed in it; `None` when it is no http(s) URL or has no valid host.
fn split_credentials(typed: &str) -> Option<(String, Option<String>)> {
    if !crate::remote::is_http(typed) {
        return None;
    }
    let shown = crate::remote::redact(typed).trim_end_matches('/').to_string();
    if shown.ends_with("(an invalid address)") || shown.contains(char::is_whitespace) {
        return None;
    }
    let cut = typed.split(['?', '#']).next().unwrap_or(typed);
    let rest = cut.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let userinfo = authority.rfind('@').map(|at| authority[..at].to_string()).filter(|u| !u.is_empty());
    Some((shown, userinfo))
}

/// `{base}/studies/{StudyInstanceUID}/series/{SeriesInstanceUID}`.
pub fn series_url(base: &str, entry: &SeriesEntry) -> String {
    format!("{}/studies/{}/series/{}", base.trim_end_matches('/'), entry.study_instance_uid, entry.series_instance_uid)
}

fn shown(value: Option<&str>) -> String {
    crate::error::printable(value.unwrap_or("–"))
}

/// `YYYYMMDD` as `YYYY-MM-DD`; anything else as sent.
fn study_date(date: Option<&str>) -> String {
    match date {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
        }
        other => shown(other),
    }
}

/// A UID short enough for a column: its first and last 8 characters.
pub fn short_uid(uid: &str) -> String {
    let chars: Vec<char> = uid.chars().collect();
    if chars.len() <= 20 {
        return uid.to_string();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_the_address() {
        assert_eq!(
            split_credentials("http://u:p%40w@127.0.0.1:8042/dicom-web/?x=1"),
            Some(("http://127.0.0.1:8042/dicom-web".into(), Some("u:p%40w".into())))
        );
        assert_eq!(split_credentials("https://pacs/dw"), Some(("https://pacs/dw".into(), None)));
        assert_eq!(split_credentials("s3://bucket/key"), None);
        assert_eq!(split_credentials("pacs.example/dw"), None);
        assert_eq!(split_credentials("http://u:p/w@host/dw"), None);
    }

    #[test]
    fn credentials_go_only_to_their_server() {
        let ctx = egui::Context::default();
        let mut w = PacsWindow::new("", None);
        w.address = "http://u:secret@127.0.0.1:1/dw".into();
        assert_eq!(w.start_search(&ctx), Some("http://127.0.0.1:1/dw".into()));
        assert_eq!(w.address, "http://127.0.0.1:1/dw");
        assert_eq!(w.with_credentials("http://127.0.0.1:1/dw"), "http://u:secret@127.0.0.1:1/dw");
        assert_eq!(w.with_credentials("http://other:1/dw"), "http://other:1/dw");
    }

    #[test]
    fn uids_and_dates_are_shortened_for_the_table() {
        assert_eq!(short_uid("1.2.3"), "1.2.3");
        assert_eq!(short_uid("1.2.826.0.1.3680043.8.498.12345678"), "1.2.826.…12345678");
        assert_eq!(study_date(Some("20260115")), "2026-01-15");
        assert_eq!(study_date(None), "–");
        let entry = SeriesEntry {
            study_instance_uid: "1.2".into(),
            series_instance_uid: "1.3".into(),
            accession_number: None,
            study_date: None,
            series_description: None,
            number_of_instances: None,
        };
        assert_eq!(series_url("http://h/dw/", &entry), "http://h/dw/studies/1.2/series/1.3");
    }
}
