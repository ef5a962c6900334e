//! A client's pending dirty region.
//!
//! The hub hands each client the rectangles changed since it last looked. The server keeps them here until the
//! client asks for an update, then sends the part inside the requested area and keeps the rest. The list is
//! bounded: contained rectangles are dropped and, past [`MAX_RECTS`], everything is merged into the bounding
//! box, so a client that asks rarely costs at most one full-screen update, never more memory.

use devices::display::Rect;

/// Most rectangles kept before merging.
pub const MAX_RECTS: usize = 32;

fn right(r: &Rect) -> u32 {
    r.x.saturating_add(r.w)
}

fn bottom(r: &Rect) -> u32 {
    r.y.saturating_add(r.h)
}

/// Whether `a` contains `b`.
pub fn contains(a: &Rect, b: &Rect) -> bool {
    a.x <= b.x && a.y <= b.y && right(a) >= right(b) && bottom(a) >= bottom(b)
}

/// The overlap of two rectangles, if any.
pub fn intersect(a: &Rect, b: &Rect) -> Option<Rect> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = right(a).min(right(b));
    let y1 = bottom(a).min(bottom(b));
    (x1 > x0 && y1 > y0).then(|| Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// The smallest rectangle covering both.
pub fn union(a: &Rect, b: &Rect) -> Rect {
    let x0 = a.x.min(b.x);
    let y0 = a.y.min(b.y);
    Rect {
        x: x0,
        y: y0,
        w: right(a).max(right(b)) - x0,
        h: bottom(a).max(bottom(b)) - y0,
    }
}

/// The parts of `a` outside `b` (up to four rectangles).
pub fn subtract(a: &Rect, b: &Rect) -> Vec<Rect> {
    let Some(i) = intersect(a, b) else {
        return vec![*a];
    };
    let mut out = Vec::new();
    if i.y > a.y {
        out.push(Rect {
            x: a.x,
            y: a.y,
            w: a.w,
            h: i.y - a.y,
        });
    }
    if bottom(&i) < bottom(a) {
        out.push(Rect {
            x: a.x,
            y: bottom(&i),
            w: a.w,
            h: bottom(a) - bottom(&i),
        });
    }
    if i.x > a.x {
        out.push(Rect {
            x: a.x,
            y: i.y,
            w: i.x - a.x,
            h: i.h,
        });
    }
    if right(&i) < right(a) {
        out.push(Rect {
            x: right(&i),
            y: i.y,
            w: right(a) - right(&i),
            h: i.h,
        });
    }
    out
}

fn area(r: &Rect) -> u64 {
    u64::from(r.w) * u64::from(r.h)
}

/// A bounded set of dirty rectangles.
#[derive(Debug, Default, Clone)]
pub struct DirtyRegion {
    rects: Vec<Rect>,
}

impl DirtyRegion {
    /// An empty region.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing is dirty.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    /// The rectangles.
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.rects.clear();
    }

    /// Adds a rectangle.
    pub fn add(&mut self, r: Rect) {
        if r.is_empty() || self.rects.iter().any(|d| contains(d, &r)) {
            return;
        }
        self.rects.retain(|d| !contains(&r, d));
        self.rects.push(r);
        if self.rects.len() > MAX_RECTS {
            let bbox = self
                .rects
                .iter()
                .skip(1)
                .fold(self.rects[0], |a, b| union(&a, b));
            self.rects = vec![bbox];
        }
    }

    /// Removes and returns the dirty parts inside `area`, keeping the parts outside. The result is one bounding
    /// box when that costs little more than the pieces (fewer rectangles encode better).
    pub fn take_within(&mut self, within: &Rect) -> Vec<Rect> {
        let mut inside = Vec::new();
        let mut outside = Vec::new();
        for r in self.rects.drain(..) {
            if let Some(i) = intersect(&r, within) {
                inside.push(i);
                outside.extend(subtract(&r, within));
            } else {
                outside.push(r);
            }
        }
        for r in outside {
            self.add(r);
        }
        if inside.len() > 1 {
            let bbox = inside.iter().skip(1).fold(inside[0], |a, b| union(&a, b));
            let sum: u64 = inside.iter().map(area).sum();
            if sum * 4 >= area(&bbox) * 3 || inside.len() > 16 {
                return vec![bbox];
            }
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: u32, y: u32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn geometry() {
        assert_eq!(
            intersect(&r(0, 0, 10, 10), &r(5, 5, 10, 10)),
            Some(r(5, 5, 5, 5))
        );
        assert_eq!(intersect(&r(0, 0, 10, 10), &r(10, 0, 5, 5)), None);
        assert_eq!(union(&r(0, 0, 1, 1), &r(9, 9, 1, 1)), r(0, 0, 10, 10));
        let pieces = subtract(&r(0, 0, 10, 10), &r(2, 3, 4, 5));
        let total: u64 = pieces.iter().map(area).sum();
        assert_eq!(total, 100 - 20);
        for p in &pieces {
            assert!(intersect(p, &r(2, 3, 4, 5)).is_none());
            assert!(contains(&r(0, 0, 10, 10), p));
        }
        assert_eq!(subtract(&r(0, 0, 5, 5), &r(0, 0, 5, 5)), vec![]);
        // Saturation instead of overflow near u32::MAX.
        let big = r(u32::MAX - 1, u32::MAX - 1, 10, 10);
        let _ = union(&big, &r(0, 0, 1, 1));
        let _ = subtract(&big, &r(0, 0, 1, 1));
    }

    #[test]
    fn region_is_bounded_and_keeps_what_was_not_requested() {
        let mut d = DirtyRegion::new();
        for i in 0..1000 {
            d.add(r(i * 3, i, 1, 1));
            assert!(d.rects().len() <= MAX_RECTS);
        }
        let mut d = DirtyRegion::new();
        d.add(r(0, 0, 100, 100));
        d.add(r(10, 10, 5, 5)); // contained: dropped
        assert_eq!(d.rects(), &[r(0, 0, 100, 100)]);
        let got = d.take_within(&r(0, 0, 50, 100));
        assert_eq!(got, vec![r(0, 0, 50, 100)]);
        assert_eq!(d.rects(), &[r(50, 0, 50, 100)]);
        let got = d.take_within(&r(0, 0, 200, 200));
        assert_eq!(got, vec![r(50, 0, 50, 100)]);
        assert!(d.is_empty());
    }

    #[test]
    fn scattered_rects_stay_separate_close_ones_merge() {
        let mut d = DirtyRegion::new();
        d.add(r(0, 0, 2, 2));
        d.add(r(500, 500, 2, 2));
        assert_eq!(d.take_within(&r(0, 0, 1000, 1000)).len(), 2);
        d.add(r(0, 0, 10, 5));
        d.add(r(0, 5, 10, 5));
        assert_eq!(d.take_within(&r(0, 0, 1000, 1000)), vec![r(0, 0, 10, 10)]);
    }
}
