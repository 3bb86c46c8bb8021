//! The experiment runner behind the `zc` command: experiment configs, proxy sweeps and training
//! runs into Parquet, rank-correlation statistics, the tables and comparisons that put proxies
//! beside the paper and the baselines, searches, figures and Slurm submission.

pub mod cluster;
pub mod compare;
pub mod config;
pub mod econas;
pub mod figure;
pub mod provenance;
pub mod search;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod table;
pub mod training;
