//! The order of merged lists, as upstream computes it.
//!
//! After a merge, items named by the patch (or by `$setElementOrder/<field>`) take the patch's
//! order, items only the server has keep their live order, and the two runs are interleaved by
//! their positions in the live list. Upstream sorts with Go's `sort.SliceStable` and a less
//! function that is not a strict weak order (an item missing from the order list is "less" than
//! anything), so the exact result depends on the exact sequence of swaps; [`go_stable_sort`]
//! reproduces Go's algorithm so our lists come out in the same order as kube-apiserver's.

use std::borrow::Borrow;

use serde_json::Value;

use super::PatchError;
use super::gofmt::{GO_MAP, go_type, go_value};

/// The directive key inside a map.
pub(super) const DIRECTIVE: &str = "$patch";
/// `$patch: delete`.
pub(super) const DELETE: &str = "delete";

/// The Go dynamic type of a decoded JSON value. Upstream compares these (`reflect.TypeOf`) to
/// decide whether two values can be merged and whether a list is homogeneous; integral numbers
/// decode to `int64` and others to `float64`, so `1` and `1.5` are different kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JsonKind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

impl JsonKind {
    pub(super) fn of(v: &Value) -> Self {
        match v {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(n) if n.as_i64().is_some() => JsonKind::Int,
            Value::Number(_) => JsonKind::Float,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }
}

/// Sorts `patch` by `patch_order` and `server_only` by `server_order`, then interleaves them
/// (upstream `normalizeElementOrder`). For lists of objects, items are compared by `merge_key`.
pub(super) fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: JsonKind,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(server_only, patch, server_order, merge_key, kind))
}

/// Splits list items into those without and those with `$patch: delete` (upstream
/// `extractToDeleteItems`); every item must be an object.
pub(super) fn split_deletions<T: Borrow<Value>>(items: Vec<T>) -> Result<(Vec<T>, Vec<T>), PatchError> {
    let mut keep = Vec::with_capacity(items.len());
    let mut delete = Vec::new();
    for item in items {
        let Value::Object(map) = item.borrow() else {
            return Err(PatchError::BadArgType { expected: GO_MAP, actual: go_type(item.borrow()) });
        };
        if map.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
            delete.push(item);
        } else {
            keep.push(item);
        }
    }
    Ok((keep, delete))
}

/// Sorts `to_sort` by the positions of its items in `order`; `$patch: delete` items go last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: JsonKind,
) -> Result<Vec<Value>, PatchError> {
    let (to_sort, deletions) = if kind == JsonKind::Object {
        require_merge_key(merge_key, &to_sort)?;
        require_merge_key(merge_key, order)?;
        split_deletions(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    // Each item's rank is looked up once; the comparator then only compares ranks.
    let mut ranked: Vec<(Option<usize>, Value)> =
        to_sort.into_iter().map(|item| (index_of(order, &item, merge_key, kind), item)).collect();
    go_stable_sort(&mut ranked, |(a, _), (b, _)| match (a, b) {
        (Some(i), Some(j)) => i < j,
        // Upstream's less reports "less" whenever either side is unknown.
        _ => true,
    });
    let mut sorted: Vec<Value> = ranked.into_iter().map(|(_, item)| item).collect();
    sorted.extend(deletions);
    Ok(sorted)
}

/// Every item must be an object holding `merge_key` (upstream `validateMergeKeyInLists`).
fn require_merge_key(merge_key: &str, items: &[Value]) -> Result<(), PatchError> {
    for item in items {
        let Value::Object(map) = item else {
            return Err(PatchError::BadArgType { expected: GO_MAP, actual: go_type(item) });
        };
        if !map.contains_key(merge_key) {
            return Err(PatchError::MissingMergeKey { item: go_value(item), key: merge_key.to_string() });
        }
    }
    Ok(())
}

/// Interleaves two sorted runs: an item of `left` goes first only when both items are found in
/// `server_order` and it comes earlier there (upstream `mergeSortedSlice`).
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: JsonKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let rank = |item: Value| (index_of(server_order, &item, merge_key, kind), item);
    let mut left = left.into_iter().map(rank).peekable();
    let mut right = right.into_iter().map(rank).peekable();
    while let (Some((l, _)), Some((r, _))) = (left.peek(), right.peek()) {
        let left_first = match (l, r) {
            (Some(li), Some(ri)) => li < ri,
            _ => false,
        };
        let next = if left_first { left.next() } else { right.next() };
        out.extend(next.map(|(_, item)| item));
    }
    out.extend(left.map(|(_, item)| item));
    out.extend(right.map(|(_, item)| item));
    out
}

/// The position of `value` in `list`, comparing merge-key values for objects and whole values
/// otherwise (upstream `index`). A missing or null key compares equal to another missing key,
/// as Go's nil interface values do.
fn index_of(list: &[Value], value: &Value, merge_key: &str, kind: JsonKind) -> Option<usize> {
    let wanted = identity(value, merge_key, kind);
    list.iter().position(|item| identity(item, merge_key, kind) == wanted)
}

fn identity<'v>(item: &'v Value, merge_key: &str, kind: JsonKind) -> Option<&'v Value> {
    let id = if kind == JsonKind::Object { item.as_object()?.get(merge_key)? } else { item };
    (!id.is_null()).then_some(id)
}

/// Go's `sort.SliceStable`: insertion sort on blocks of 20, then repeated `SymMerge` passes.
/// Kept step for step because upstream's comparator is inconsistent (see the module docs).
pub(super) fn go_stable_sort<T>(data: &mut [T], less: impl Fn(&T, &T) -> bool) {
    const BLOCK: usize = 20;
    let n = data.len();
    let (mut a, mut b) = (0, BLOCK);
    while b <= n {
        insertion_sort(data, a, b, &less);
        a = b;
        b += BLOCK;
    }
    insertion_sort(data, a, n, &less);

    let mut block = BLOCK;
    while block < n {
        let (mut a, mut b) = (0, 2 * block);
        while b <= n {
            sym_merge(data, a, a + block, b, &less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(data, a, m, n, &less);
        }
        block *= 2;
    }
}

fn insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges the sorted runs `data[a..m]` and `data[m..b]` in place (Go's `symMerge`).
fn sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &impl Fn(&T, &T) -> bool) {
    if m - a == 1 {
        // Binary-search the insertion point of data[a] in data[m..b], then rotate it there.
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        for k in a..i - 1 {
            data.swap(k, k + 1);
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(data, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(data, mid, end, b, less);
    }
}

/// Rotates `data[a..b]` so that `data[m]` comes first (Go's block-swap `rotate`).
fn rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(data, m - i, m, j);
            i -= j;
        } else {
            swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(data, m - i, m, i);
}

fn swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// With a consistent comparator the Go algorithm is a plain stable sort.
        #[test]
        fn go_stable_sort_agrees_with_std_for_a_strict_order(
            mut items in proptest::collection::vec((0u8..8, any::<u16>()), 0..90)
        ) {
            let mut expected = items.clone();
            expected.sort_by_key(|(k, _)| *k);
            go_stable_sort(&mut items, |a, b| a.0 < b.0);
            prop_assert_eq!(items, expected);
        }

        /// With upstream's inconsistent comparator it must still be a permutation.
        #[test]
        fn go_stable_sort_permutes_under_an_inconsistent_order(
            mut items in proptest::collection::vec(0u8..10, 0..90)
        ) {
            let mut before = items.clone();
            go_stable_sort(&mut items, |a, b| *a >= 5 || *b >= 5 || a < b);
            before.sort_unstable();
            let mut after = items.clone();
            after.sort_unstable();
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn unknown_items_bubble_like_go() {
        // Go: sort.SliceStable([]int{1, 9, 2}, less) where 9 is "unknown" moves 9 to the front,
        // because the insertion sort swaps it past every neighbour.
        let order = [1, 2];
        let mut items = vec![1, 9, 2];
        let idx = |x: &i32| order.iter().position(|o| o == x);
        go_stable_sort(&mut items, |a, b| match (idx(a), idx(b)) {
            (Some(i), Some(j)) => i < j,
            _ => true,
        });
        assert_eq!(items, [9, 1, 2]);
    }
}
