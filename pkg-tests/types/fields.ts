// Field types as a strict TypeScript user writes them: every line must type-check, and each
// declared type is what the runtime gives (js-surface.test.mjs, "every field shape round-trips",
// checks those values: vectors as arrays, numeric arrays, nested or not, as flat typed arrays).
// Misuse of field types is in misuse.ts.
import { defineMessage } from "ringkernel-web";
import type { FieldType, InputOf, OutputOf } from "ringkernel-web";

const Particle = defineMessage("FieldsParticle", { position: "vec3<f32>", mass: "f32" });
const Grid = defineMessage("FieldsGrid", {
  cells: "array<array<f32, 3>, 2>",
  lanes: "array<vec2<u32>, 2>",
  counts: "array<i32, 4>",
  nearest: Particle,
  byName: "FieldsParticle",
  swarm: "array<FieldsParticle, 2>",
  pairs: "array<array<FieldsParticle, 2>, 2>",
});

export const spellings: FieldType[] = ["i32", "vec4<u32>", "array<f32, 16>", "array<vec3<f32>, 2>", "Particle", "array<Particle, 8>", "array<array<f32, 3>, 2>"];

export const sent: InputOf<typeof Grid> = {
  cells: [[1, 2, 3], [4, 5, 6]],
  lanes: new Uint32Array([1, 2, 3, 4]),
  counts: [1, 2, 3, 4],
  nearest: { position: [0, 0, 1], mass: 2 },
  byName: { position: [1, 0, 0], mass: 1 },
  swarm: [{ position: [0, 1, 0], mass: 1 }, { position: [0, 0, 0], mass: 3 }],
  pairs: [[{ position: [0, 0, 0], mass: 1 }, { position: [0, 0, 0], mass: 1 }], [{ position: [0, 0, 0], mass: 1 }, { position: [0, 0, 0], mass: 1 }]],
};
export const flatCells: InputOf<typeof Grid>["cells"] = new Float32Array(6);

export function read(answer: OutputOf<typeof Grid>): number {
  const cells: Float32Array = answer.cells;
  const lanes: Uint32Array = answer.lanes;
  const counts: Int32Array = answer.counts;
  const position: [number, number, number] = answer.nearest.position;
  const asArray: number[] = answer.nearest.position;
  return cells[5] + lanes[3] + counts[0] + position[2] + asArray[0] + answer.nearest.mass + answer.swarm.length + answer.pairs.length;
}
