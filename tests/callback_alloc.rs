//! The audio callback never allocates: a counting global allocator watches
//! [`hark::audio::capture::Feed::push`] for every sample format, including a full ring.
//!
//! Only the test's own thread is counted: the test harness's threads may allocate at any time
//! (a loaded machine once gave 4 such allocations in CI).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    // Const-initialised, so reading it from the allocator never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_callback_does_not_allocate() {
    let intake = hark::audio::capture::Intake::new();
    let mut feed = intake.feed(2).unwrap();
    let i16s: Vec<i16> = (0..960).map(|i| (i * 31) as i16).collect();
    let f32s: Vec<f32> = (0..960).map(|i| (i as f32 / 960.0) - 0.5).collect();
    let u8s: Vec<u8> = (0..960).map(|i| i as u8).collect();
    let i32s: Vec<i32> = (0..960).map(|i| i << 20).collect();
    COUNTING.with(|c| c.set(true));
    // 300 callbacks of 10 ms at 48 kHz stereo per format: more than the ring holds, so the
    // full-ring path runs too.
    for _ in 0..300 {
        feed.push(&i16s);
        feed.push(&f32s);
        feed.push(&u8s);
        feed.push(&i32s);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0);
    assert!(intake.dropped() > 0, "the ring filled up during the test");
}
