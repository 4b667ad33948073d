//! The audio callback never allocates: a counting global allocator watches
//! [`hark::capture::Feed::push`] for every sample format, including a full ring.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_callback_does_not_allocate() {
    let intake = hark::capture::Intake::new();
    let mut feed = intake.feed(2).unwrap();
    let i16s: Vec<i16> = (0..960).map(|i| (i * 31) as i16).collect();
    let f32s: Vec<f32> = (0..960).map(|i| (i as f32 / 960.0) - 0.5).collect();
    let u8s: Vec<u8> = (0..960).map(|i| i as u8).collect();
    let i32s: Vec<i32> = (0..960).map(|i| i << 20).collect();
    COUNTING.store(true, Ordering::SeqCst);
    // 300 callbacks of 10 ms at 48 kHz stereo per format: more than the ring holds, so the
    // full-ring path runs too.
    for _ in 0..300 {
        feed.push(&i16s);
        feed.push(&f32s);
        feed.push(&u8s);
        feed.push(&i32s);
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0);
    assert!(intake.dropped() > 0, "the ring filled up during the test");
}
