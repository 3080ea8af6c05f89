//! The process's allocator: mimalloc, asked the way it answers fastest.
//!
//! The `mimalloc` crate's allocator sends every request to `mi_malloc_aligned`. In mimalloc 3
//! that call takes its fast path only while the size class's current page has a free block;
//! otherwise, for a size whose class is not a power of two (96, 152, 288 bytes: most of ours),
//! it over-allocates from the next class up and skips the page refill that would restore the
//! fast path. A table build of 10,000 apps sent a third of its allocations down that path.
//! Every mimalloc block is aligned to a machine word, so requests that need no more go to
//! `mi_malloc` (as the standard library's `System` does with `malloc`); only larger
//! alignments use the aligned calls.

// Unsafe code (one of two modules, with proxy/accept/sockopt.rs): the `GlobalAlloc` contract is unsafe
// by definition.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as ffi;

/// mimalloc as the global allocator (`#[global_allocator] static A: Allocator = Allocator;`).
pub struct Allocator;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: each method forwards to the mimalloc call with the same contract; a plain call is
// used only where its word alignment satisfies `layout`, and `dealloc` / `realloc` receive
// pointers that this allocator returned (the `GlobalAlloc` contract).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = if layout.align() <= WORD {
            unsafe { ffi::mi_malloc(layout.size()) }
        } else {
            unsafe { ffi::mi_malloc_aligned(layout.size(), layout.align()) }
        };
        p.cast()
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if layout.align() <= WORD {
            unsafe { ffi::mi_zalloc(layout.size()) }
        } else {
            unsafe { ffi::mi_zalloc_aligned(layout.size(), layout.align()) }
        };
        p.cast()
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { ffi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = if layout.align() <= WORD {
            unsafe { ffi::mi_realloc(ptr.cast::<c_void>(), new_size) }
        } else {
            unsafe { ffi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()) }
        };
        p.cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 4 KiB at every alignment up to 4 KiB: aligned, writable, and kept
    /// through a realloc (alive at once, so that pages fill and refill).
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let mut blocks = Vec::new();
        for align in (0..=12).map(|shift| 1usize << shift) {
            for size in (1..=4096).step_by(7) {
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = size % 2 == 0;
                let p = unsafe {
                    if zeroed {
                        Allocator.alloc_zeroed(layout)
                    } else {
                        Allocator.alloc(layout)
                    }
                };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                if zeroed {
                    assert!(unsafe { std::slice::from_raw_parts(p, size) }
                        .iter()
                        .all(|&b| b == 0));
                }
                unsafe { p.write_bytes(0xA5, size) };
                blocks.push((p, layout));
            }
        }
        for (p, layout) in blocks {
            let grown = unsafe { Allocator.realloc(p, layout, layout.size() * 2) };
            assert!(!grown.is_null());
            assert_eq!(grown as usize % layout.align(), 0);
            let kept = unsafe { std::slice::from_raw_parts(grown, layout.size()) };
            assert!(kept.iter().all(|&b| b == 0xA5), "contents kept by realloc");
            let grown_layout = Layout::from_size_align(layout.size() * 2, layout.align()).unwrap();
            unsafe { Allocator.dealloc(grown, grown_layout) };
        }
    }
}
