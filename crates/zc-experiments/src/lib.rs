//! The experiment runner behind the `zc` command: experiment configs, proxy sweeps into Parquet,
//! rank-correlation statistics and the tables that compare proxies with the paper.

pub mod cluster;
pub mod compare;
pub mod config;
pub mod figure;
pub mod provenance;
pub mod search;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod table;
