//! The daemon's HTTP side (axum): the pages, `/metrics`, `/healthz`, `/readyz`, login.
//! Reads only: no endpoint changes a server or runs SQL from a request.

pub mod pages;

use std::sync::Arc;

use super::clock::Clock;
use super::config::Config;
use super::state::Fleet;
use super::store::Store;

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub fleet: Arc<Fleet>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}
