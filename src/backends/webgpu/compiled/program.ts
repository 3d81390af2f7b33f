// What every program of the compiled step has (issue #18), in the shape of tfjs-backend-webgpu's programs
// (webgpu_program.ts: shaderKey, workgroupSize, getUserCode) so that a reader of those is at home: the buffers it
// binds, and its WGSL. Unlike tfjs's, these are bound and dispatched by the compiled runner (./graph.ts, ./runner.ts), with
// pipelines and bind groups made once, not through runWebGPUProgram, which allocates and tracks an output per call.
//
// Binding 0 of every program is the step's header, a uniform written once per step with the batch's indices:
// uniform values keep workgroupBarrier() in uniform control flow when a loop's trip count depends on the batch.

export interface Binding {
  /** The plan buffer bound here (see ./runner.ts). */
  name: string;
  type: 'f32' | 'u32';
  write: boolean;
}

export interface CompiledProgram {
  /** The pipeline's cache key: programs with the same key have the same WGSL. */
  shaderKey: string;
  /** The buffers after the header (binding 0), in binding order. */
  bindings: Binding[];
  workgroupSize: [number, number, number];
  /** The workgroups to dispatch for a batch of `n` images. */
  dispatch(n: number, header: StepHeader): [number, number, number];
  /** The program's constants, functions and `main`; the declarations of the header and bindings come first. */
  getUserCode(): string;
}

/** The step's header: its batch size, learning rate, ring slot, first image and split-K slices per convolution. */
export interface StepHeader {
  n: number;
  lr: number;
  slot: number; // training: the ring slot of the step's loss and accuracy; evaluation: the batch's number
  start: number; // evaluation: the batch's first image (its images are start..start+n)
  slices: number[]; // per convolution (in plan order): split-K slices of its filter gradient
}

/** Bytes of the header, and where the indices start (a storage binding's offset must be a multiple of 256). */
export const HEADER_BYTES = 80;
export const INDICES_OFFSET = 256;
/** Convolutions whose filter-gradient slices the header carries. */
export const MAX_CONVS = 16;

const HEADER_WGSL = `
struct Step {
  n : u32,
  lr : f32,
  slot : u32,
  start : u32,
  slices : array<vec4<u32>, ${MAX_CONVS / 4}>,
}
@group(0) @binding(0) var<uniform> step : Step;
fn slicesOf(conv : u32) -> u32 { return step.slices[conv / 4u][conv % 4u]; }
`;

/** The whole WGSL of `p`: the header and binding declarations, then its own code. */
export function shaderCode(p: CompiledProgram): string {
  const decls = p.bindings.map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.write ? 'read_write' : 'read'}> ${b.name} : array<${b.type}>;`);
  return `${HEADER_WGSL}\n${decls.join('\n')}\n${p.getUserCode()}`;
}

/** Writes `h` into the first HEADER_BYTES of `buffer`. */
export function writeHeader(view: DataView, h: StepHeader): void {
  view.setUint32(0, h.n, true);
  view.setFloat32(4, h.lr, true);
  view.setUint32(8, h.slot, true);
  view.setUint32(12, h.start, true);
  h.slices.forEach((s, i) => view.setUint32(16 + 4 * i, s, true));
}

/** Threads per workgroup of the one-thread-per-element programs (dispatched by ../wgsl/flat_dispatch.ts). */
export const FLAT = 256;

/** `main` of a one-thread-per-element program: calls its `element(i)` with the element's index (y folded in). */
export const FLAT_MAIN = `@compute @workgroup_size(${FLAT}, 1, 1)
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) groups : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  element((wid.y * groups.x + wid.x) * ${FLAT}u + lid);
}`;
