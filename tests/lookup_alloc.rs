//! A host + path lookup allocates nothing: counted with a global allocator that tallies every
//! allocation this test binary makes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use switchyard::sim::synthetic::{self, Shape};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn lookups_do_not_allocate() {
    let table = synthetic::table(&Shape {
        exact_apps: 2_000,
        wildcard_apps: 200,
        path_apps: 20,
        tasks_per_app: 1,
        ..Shape::default()
    });

    let cases: [(&[u8], &str, Option<&str>); 6] = [
        (
            b"APP-1999.example.com:80",
            "/",
            Some("/synthetic/app-01999"),
        ),
        (
            b"x.y.wild-2100.example.net",
            "/a",
            Some("/synthetic/app-02100"),
        ),
        (
            b"paths.example.com",
            "/p7/deep",
            Some("/synthetic/app-02207"),
        ),
        (b"paths.example.com", "/nope", None),
        (b"unknown.example.org", "/", None),
        (&[b'a'; 400], "/", None),
    ];
    for (host, path, expected) in cases {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let found = table.route(host, path).map(|r| r.backend.app_id().as_str());
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(found, expected, "{}", String::from_utf8_lossy(host));
        assert_eq!(
            after - before,
            0,
            "lookup of {} allocated",
            String::from_utf8_lossy(host)
        );
    }
}
