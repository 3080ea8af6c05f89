//! The data plane over real sockets: HTTP/1 (native and hyper's) and HTTP/2 through the proxy,
//! gRPC and HTTP/2 to backends,
//! TLS, table swaps and listeners, TCP mode, the real binary, misbehaving backends, the security
//! review's findings and Marathon-LB's behaviour as a client sees it.

mod backend_faults;
mod grpc;
mod h2_to_h1;
mod http_balancing;
mod http_failures;
mod http_routing;
mod listeners_and_tcp;
mod marathon_lb_fidelity;
mod native_h1;
mod proxy_process;
mod security_review;
mod table_swaps;
mod tls;
mod workers;
