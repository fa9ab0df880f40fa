//! Renders the `portcullis investigate --html` report: one self-contained HTML page.
//!
//! Key decision: the charts are inline SVG computed here on the server side, with inline CSS
//! and no script, font or URL of any kind, so the page opens offline, passes any
//! content-security policy and can be checked by parsing it. Every piece of text goes through
//! [`escape_html`], which also makes control characters (terminal escapes) and bidi overrides
//! visible, because user names and log text are chosen by attackers.
#![deny(missing_docs)]

mod chart;
mod escape;
mod model;
mod page;

pub use escape::{escape_html, show_controls};
pub use model::{
    AddrAttempts, CampaignRow, Finding, LoginRow, OriginBar, ReportModel, Severity, TimeBucket,
    Totals, UserAttempts,
};
pub use page::render_html;

/// The fill colours of the charts, public so tests (and anyone checking a screenshot) can find
/// the drawn marks; each chart has its own hues so its pixels can be counted apart.
pub mod colours {
    /// Failed attempts in the attempts-over-time chart.
    pub const TIME_FAILURES: &str = "#e03131";
    /// Successful logins in the attempts-over-time chart.
    pub const TIME_SUCCESSES: &str = "#2f9e44";
    /// Bars of the top attacking addresses.
    pub const ADDRS: &str = "#f76707";
    /// Bars of the most-tried user names.
    pub const USERS: &str = "#1c7ed6";
    /// Failures arc of the successes-vs-failures donut.
    pub const DONUT_FAILURES: &str = "#a61e4d";
    /// Successes arc of the successes-vs-failures donut.
    pub const DONUT_SUCCESSES: &str = "#0ca678";
    /// Bars of the attackers-by-country chart.
    pub const COUNTRIES: &str = "#7048e8";
    /// Bars of the attackers-by-AS chart.
    pub const ASNS: &str = "#0c8599";
}

#[cfg(test)]
mod tests;
