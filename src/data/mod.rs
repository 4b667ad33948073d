//! Training and evaluation data: folders and their train/test split ([`folders`]), the
//! embedding cache ([`cache`]), embedding many recordings at once ([`jobs`]) and how clips and
//! negative recordings are padded, mixed and cut into blocks ([`prep`]).

pub mod cache;
pub mod folders;
pub mod jobs;
pub mod prep;
