mod auth;
mod errors;
mod http;
mod lifecycle;
mod messages;
mod operations;
