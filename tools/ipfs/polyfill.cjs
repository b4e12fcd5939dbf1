// js-ipfs 0.66 calls Promise.withResolvers (Node 22); Node 20 lacks it (../shared/TOOLCHAIN.md).
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };
}
