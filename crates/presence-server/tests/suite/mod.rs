mod auth;
mod cluster;
mod errors;
mod hardening;
mod http;
mod lifecycle;
mod messages;
mod operations;
