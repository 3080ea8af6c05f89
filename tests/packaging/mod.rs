//! Packaging, checked without Docker or DC/OS: the Dockerfile and the Universe package.

mod dockerfile;
mod universe;
