// Preact + htm: components written as tagged templates, with no build step.
import { h, render, Fragment } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
export { render, Fragment };
export { useState, useEffect, useRef, useMemo, useCallback } from 'preact/hooks';
