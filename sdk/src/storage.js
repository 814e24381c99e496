// localStorage under one prefix; every access may throw (privacy modes, sandboxed frames).
// Callers write only while analytics consent is granted.
// Keys: sl_v visitor id, sl_s session, sl_q unsent events, sl_c consent, sl_x experiments
// the visitor was exposed to.

/** store(key) reads, store(key, value) writes, store(key, null) removes. */
export function store(key, value) {
  try {
    key = 'sl_' + key
    return value === undefined
      ? JSON.parse(localStorage.getItem(key))
      : value === null
        ? localStorage.removeItem(key)
        : localStorage.setItem(key, JSON.stringify(value))
  } catch (e) {}
}
