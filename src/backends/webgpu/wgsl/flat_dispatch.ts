// The dispatch of a program with one thread per output element, as tfjs-backend-webgpu lays flat programs out:
// up to 65,535 workgroups a dimension (WebGPU's default limit), so larger outputs fold into y.

export function flatDispatch(size: number, workgroupSize: number): [number, number, number] {
  const groups = Math.ceil(size / workgroupSize);
  return groups <= 65535 ? [groups, 1, 1] : [65535, Math.ceil(groups / 65535), 1];
}
