// Helpers for the decoded object graph: safe own-property writes, and the one post-pass the
// unpickler runs only when its cheap bookkeeping cannot be trusted (see decode.ts): it swaps
// dicts that became Maps after being shared and measures the nesting depth of a graph
// that may contain cycles. Iterative, so a deep graph cannot overflow the JS stack.

import { UnpicklingError } from "./errors.ts";

/**
 * `obj[key] = value` that keeps "__proto__" an ordinary own property. The object is a
 * normal `{}` (prototype Object.prototype), so users get plain objects; plain assignment is
 * used for every other key because only `__proto__` is an accessor on Object.prototype.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/** Objects that can hold other values: everything but Uint8Array among the decoder's outputs. */
export function isContainer(v: unknown): v is object {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array);
}

export function depthError(maxDepth: number): UnpicklingError {
  return new UnpicklingError(`pickle data nests deeper than ${maxDepth} levels (maxDepth)`);
}

/**
 * Replaces every reference to a key of `replaced` by its value, everywhere in the graph
 * under `root`, and checks that the depth-first nesting depth stays within `maxDepth`
 * (the root container is level 1; cycles are followed once).
 */
export function repairGraph(root: unknown, replaced: Map<object, object> | null, maxDepth: number): unknown {
  const swap = (v: unknown): unknown =>
    replaced !== null && typeof v === "object" && v !== null ? (replaced.get(v) ?? v) : v;
  root = swap(root);
  if (!isContainer(root)) return root;
  if (maxDepth < 1) throw depthError(maxDepth);
  const visited = new Set<object>([root]);
  const frames: { kids: object[]; next: number }[] = [{ kids: repairChildren(root, swap), next: 0 }];
  while (frames.length > 0) {
    const frame = frames[frames.length - 1]!;
    if (frame.next === frame.kids.length) {
      frames.pop();
      continue;
    }
    const child = frame.kids[frame.next++]!;
    if (visited.has(child)) continue;
    visited.add(child);
    if (frames.length + 1 > maxDepth) throw depthError(maxDepth);
    frames.push({ kids: repairChildren(child, swap), next: 0 });
  }
  return root;
}

/** Swaps replaced references inside one container; returns its container children. */
function repairChildren(node: object, swap: (v: unknown) => unknown): object[] {
  const kids: object[] = [];
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const v = swap(node[i]);
      if (v !== node[i]) node[i] = v;
      if (isContainer(v)) kids.push(v);
    }
  } else if (node instanceof Map) {
    const keys = [...node.keys()];
    const entries = keys.map((k) => [swap(k), swap(node.get(k))] as const);
    const keysChanged = entries.some(([k], i) => k !== keys[i]);
    if (keysChanged) node.clear();
    for (const [k, v] of entries) {
      if (keysChanged || node.get(k) !== v) node.set(k, v);
      if (isContainer(k)) kids.push(k);
      if (isContainer(v)) kids.push(v);
    }
  } else if (node instanceof Set) {
    const items = [...node].map(swap);
    if (items.some((v) => !node.has(v))) {
      node.clear();
      for (const v of items) node.add(v);
    }
    for (const v of items) if (isContainer(v)) kids.push(v);
  } else {
    const obj = node as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      const v = swap(obj[k]);
      if (v !== obj[k]) setOwn(obj, k, v);
      if (isContainer(v)) kids.push(v);
    }
  }
  return kids;
}
