//! The runtime conformance suite: black-box tests of [`LinuxRuntime`] on the real host.
//!
//! **Needs root** (namespaces, mounts, cgroups, netlink) and Debian's `busybox-static` (the
//! test image is a busybox rootfs built on the fly; nothing is pulled). Every test gets its
//! own data dir, bridge, pod subnet and cgroup root, and an [`Env`] guard that runs
//! [`crate::linux::reset`] on drop — even when the test fails — and then checks that no mount,
//! link or cgroup is left.
//!
//! The test binary doubles as the shim (see `linux::test_shim`).

mod bench;
mod cases;
mod env;
