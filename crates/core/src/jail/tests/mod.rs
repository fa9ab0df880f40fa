//! Simulation tests of the jail engine (inside the crate, to reach private state).
//!
//! - `sim`: the fake-clock driver and event builders;
//! - `rules`: one test per rule;
//! - `model`: a naive reference model and the proptest properties checked against it;
//! - `protection`: the login-protection bound as properties of the raw event sequence;
//! - `scenario`: hours of mixed traffic with hand-worked answers;
//! - `slow`: the long window and the distinct-user-names signal, rules and properties.

mod model;
mod protection;
mod rules;
mod scenario;
mod sim;
mod slow;
