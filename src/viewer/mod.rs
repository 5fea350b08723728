//! The egui viewer: camera maths ([`camera`]), one slide on screen ([`slide_view`]) and the
//! application window ([`app`]). It reads slides only through [`crate::slide::Slide`] and loads
//! tiles only through [`crate::tiles::TileScheduler`].

pub mod annotate;
pub mod annotation_panels;
pub mod app;
mod app_files;
pub mod camera;
pub mod file_browser;
pub mod help;
pub mod magnification;
pub mod native;
pub mod report_panel;
pub mod slide_view;
pub mod tab_strip;

pub use app::{ScreenshotPlan, ViewerApp};
