// One invocation per item on a 1-D grid that spills into y past 65535 workgroups (Device.grid): the
// item's flat index. The including file declares `override WG`, its workgroup size.
fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}
