//! The egui viewer: camera maths ([`camera`]), one slide on screen ([`slide_view`]), the
//! application window ([`app`]), File > Open from PACS… ([`pacs`]), scripted screenshot and benchmark runs ([`scripted`]) and the
//! background jobs they all use ([`job`]). It reads slides only through [`crate::slide::Slide`] and loads
//! tiles only through [`crate::tiles::TileScheduler`].

pub mod annotate;
pub mod annotation_panels;
pub mod app;
pub mod app_cases;
pub mod app_files;
pub mod camera;
pub mod case_list;
pub mod command;
pub mod counting_panel;
pub mod detection_overlay;
pub mod detection_panel;
pub mod export_view;
pub mod file_browser;
pub mod grid;
pub mod help;
pub mod job;
pub mod magnification;
pub mod message;
pub mod native;
pub mod pacs;
pub mod publisher;
pub mod report_panel;
pub mod scripted;
pub mod slide_view;
pub mod tab_strip;
pub mod tile_painter;

pub use app::ViewerApp;
pub use scripted::{BenchPlan, ScreenshotPlan};
