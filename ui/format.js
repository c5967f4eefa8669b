// The dashboard's small helpers: building DOM safely (text, never HTML), sizes, ages and durations.

/** An element with attributes (on* never: no inline handlers; style an object) and children (strings become text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'className') node.className = value;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (name === 'style') Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

/** A byte count people read, with the exact count machines read (`<data value>`). */
export const bytesData = (bytes) =>
  el('data', { value: bytes, title: `${bytes.toLocaleString('en')} bytes` }, formatBytes(bytes));

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "3 min ago", with the exact time as the element's datetime. */
export function ago(iso) {
  if (!iso) return el('span', { className: 'muted' }, 'never');
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  return el('time', { datetime: iso, title: iso }, seconds < 5 ? 'just now' : `${formatDuration(seconds)} ago`);
}

export const link = (href, ...text) => el('a', { href }, ...text);

/** A table body's rows, or one row saying it is empty. */
export function fillRows(tbody, rows, columns, empty) {
  tbody.replaceChildren(
    ...(rows.length ? rows : [el('tr', {}, el('td', { colspan: columns, className: 'empty' }, empty))]),
  );
}

/** Re-renders `container` without losing keyboard focus: the element with the focused one's data-key gets it back. */
export function keepFocus(container, render) {
  const focused = document.activeElement;
  const key = container.contains(focused) ? focused?.getAttribute('data-key') : null;
  render();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

export const $ = (selector) => document.querySelector(selector);
