// REST and DICOMweb calls with the session's bearer token; errors carry the server's JSON.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    // The error's whole JSON body, for errors that carry more than a message.
    readonly body: unknown = undefined,
  ) {
    super(message);
  }
}

export interface User {
  username: string;
  displayName: string;
  institution: string;
  roles: string[];
  mustChangePassword?: boolean;
}

export interface Task {
  id: number;
  studyInstanceUid: string;
  service: string;
  institution: string;
  modalities: string;
  kind: 'imaging' | 'ecg';
  priority: 'stat' | 'urgent' | 'routine';
  priorityReason: string;
  status: 'queued' | 'claimed' | 'preliminary' | 'final';
  receivedAt: string;
  dueAt: string;
  overdue: boolean;
  nearDue: boolean;
  claimedBy: string | null;
  finalAt: string | null;
  patient: { id: string; name: string };
  description: string;
  indication: string;
  clinicalQuestion: string;
  // Routed before the study was complete (a STAT study from an edge node); instances: so far.
  arriving: boolean;
  instances: number;
}

export interface Report {
  id: number;
  version: number;
  kind: 'draft' | 'preliminary' | 'final' | 'addendum';
  findings: string;
  impression: string;
  critical: boolean;
  author: string;
  createdAt: string;
}

export interface TaskDetail extends Task {
  reports: Report[];
}

const TOKEN_KEY = 'yilian.token';
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let onExpired: () => void = () => {};

export function setToken(t: string): void {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}
export function currentToken(): string {
  return token;
}
// Called when the server answers 401 to a call made with a token: the session has ended.
export function onSessionExpired(f: () => void): void {
  onExpired = f;
}

// A request the hub refused for the user's limit of renders or uploads at once (429 with
// Retry-After; nothing of it was done) is sent again after a short pause, a few times: a study
// with many series asks for more thumbnails at once than the limit.
const kLimitRetries = 6;

async function send(method: string, path: string, body?: unknown, accept?: string) {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (accept) headers.Accept = accept;
  let res: Response;
  for (let attempt = 1; ; attempt++) {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status !== 429 || !res.headers.get('Retry-After') || attempt > kLimitRetries) break;
    await new Promise((resolve) => setTimeout(resolve, 150 * attempt + Math.random() * 100));
  }
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText;
    let parsed: unknown;
    try {
      const e = (await res.json()) as { error?: { code?: string; message?: string } };
      parsed = e;
      code = e.error?.code ?? code;
      message = e.error?.message ?? message;
    } catch {
      // not JSON: keep the status text
    }
    if (res.status === 401 && token) onExpired();
    throw new ApiError(res.status, code, message, parsed);
  }
  return res;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  return (await res.json()) as T;
}

// DICOM JSON (QIDO-RS): an array of objects keyed by tag.
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;
export async function qido(path: string): Promise<DicomJson[]> {
  const res = await send('GET', path, undefined, 'application/dicom+json');
  const text = await res.text();
  return text ? (JSON.parse(text) as DicomJson[]) : [];
}
export function tagString(d: DicomJson, tag: string): string {
  const v = d[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && 'Alphabetic' in (v as object)) {
    return String((v as { Alphabetic: string }).Alphabetic);
  }
  return String(v);
}
export function tagNumber(d: DicomJson, tag: string, fallback = 0): number {
  const n = Number(tagString(d, tag));
  return Number.isFinite(n) && tagString(d, tag) !== '' ? n : fallback;
}
export function tagNumbers(d: DicomJson, tag: string): number[] {
  return (d[tag]?.Value ?? []).map((v) => Number(v));
}

export async function image(path: string, accept = 'image/jpeg'): Promise<Blob> {
  const res = await send('GET', path, undefined, accept);
  return res.blob();
}

// A DICOM person name ("Li^Hua") as people write it ("Li Hua").
export function personName(pn: string): string {
  return pn.split('=')[0].replace(/\^+/g, ' ').trim();
}
