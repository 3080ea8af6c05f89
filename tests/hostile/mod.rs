//! Hostile peers: HTTP/1 smuggling and parser vectors, HTTP/2 floods and downgrade vectors, slow
//! clients and connection floods, and every committed fuzz input replayed. `recorder` is the
//! raw backend they share, behind a balancer, that keeps the exact bytes it receives.

mod recorder;

mod fuzz_regressions;
mod hostile_h1;
mod hostile_h2;
mod hostile_slow;
