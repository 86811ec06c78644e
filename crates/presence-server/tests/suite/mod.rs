mod auth;
mod cluster;
mod errors;
mod http;
mod lifecycle;
mod messages;
mod operations;
