// Text that came from outside (files, flags, archives) as it may be printed on a terminal.

/**
 * C0 and C1 control characters (ESC, BEL, CSI...), which a terminal would act on, and the bidirectional controls
 * (U+202E and kin), which reorder what a terminal shows (issue #20).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
export const hasControlChars = (s: string): boolean => CONTROL.test(s);

/** `s` with every control character shown as `?`: for printing text that came from files or flags. */
export const printable = (s: string): string => s.replace(new RegExp(CONTROL.source, 'g'), '?');
