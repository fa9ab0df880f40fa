//! [`Few`]: a short sorted list that keeps one item in place.

/// Up to one item in place, more on the heap. Most addresses under attack hold one window
/// entry, one long-window bucket and one user name: with a `Vec` each would cost a heap
/// block (32 bytes with malloc's header, three per address: ~100 MB at 1M addresses); this
/// is the size of a `Vec` (the enum lives in the `Vec`'s niche) and allocates nothing for
/// zero or one item.
#[derive(Clone, Debug, Default)]
pub(crate) enum Few<T: Copy> {
    #[default]
    Zero,
    One(T),
    Many(Vec<T>),
}

impl<T: Copy> Few<T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Few::Zero => &[],
            Few::One(x) => std::slice::from_ref(x),
            Few::Many(v) => v,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Few::Zero => &mut [],
            Few::One(x) => std::slice::from_mut(x),
            Few::Many(v) => v,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn insert(&mut self, at: usize, item: T) {
        match self {
            Few::Zero => *self = Few::One(item),
            Few::One(x) => {
                let mut v = Vec::with_capacity(4);
                v.push(*x);
                v.insert(at, item);
                *self = Few::Many(v);
            }
            Few::Many(v) => v.insert(at, item),
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        self.insert(self.len(), item);
    }

    /// Keeps the items `keep` says yes to, in order; back in place when one or none is left.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match self {
            Few::Zero => {}
            Few::One(x) => {
                if !keep(x) {
                    *self = Few::Zero;
                }
            }
            Few::Many(v) => {
                v.retain(|x| keep(x));
                self.settle();
            }
        }
    }

    /// Removes the first `k` items (`k` at most `len`); back in place when one or none is
    /// left, so an idle address gives its heap block back.
    pub(crate) fn remove_front(&mut self, k: usize) {
        if k == 0 {
            return;
        }
        match self {
            Few::Zero => {}
            Few::One(_) => *self = Few::Zero,
            Few::Many(v) => {
                v.drain(..k.min(v.len()));
                self.settle();
            }
        }
    }

    /// A heap list of one or none goes back in place.
    fn settle(&mut self) {
        if let Few::Many(v) = self {
            *self = match v.as_slice() {
                [] => Few::Zero,
                [x] => Few::One(*x),
                _ => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_lives_in_place_and_lists_spill_and_come_back() {
        assert_eq!(
            std::mem::size_of::<Few<(i64, u32, u32)>>(),
            std::mem::size_of::<Vec<u8>>()
        );
        let mut f: Few<u32> = Few::default();
        f.push(3);
        assert!(matches!(f, Few::One(3)));
        f.insert(0, 1);
        f.insert(1, 2);
        assert_eq!(f.as_slice(), [1, 2, 3]);
        f.remove_front(2);
        assert!(matches!(f, Few::One(3)));
        f.push(4);
        f.retain(|&x| x > 3);
        assert!(matches!(f, Few::One(4)));
        f.remove_front(1);
        assert!(matches!(f, Few::Zero));
    }
}
