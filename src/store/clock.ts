// The store never reads the time itself: every operation takes `now` from an injected clock, so
// tests can drive leases, quarantine and expiry step by step.
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
