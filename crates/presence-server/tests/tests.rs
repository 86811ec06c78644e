//! presenced over real sockets: every row of the contract, checked against the real binary
//! started on port 0 (one test binary, a module per area, as ripgrep does).

mod suite;
mod support;
