// What the optional features' hook is told: the page is being left, or hidden.
export const LEAVE = 1
export const HIDE = 2
