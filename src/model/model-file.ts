import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VbmdError } from '../util/errors.js';

/**
 * The model file and its identity. A model is `models/<name>-<version>.onnx` with `<same>.sha256` beside it
 * (sha256sum format: 64 hex digits, optionally followed by the file name). The digest is checked before the
 * file is ever given to onnxruntime: a truncated copy, a half-finished git checkout or an LFS pointer must fail
 * at start with a sentence saying what to do, never produce numbers from other weights than the ones named in
 * the FHIR Device (it carries the model sha256: README.md "What lands in the record").
 */
export interface ModelIdentity {
  name: string;
  version: string;
  sha256: string;
}

export interface ModelFile extends ModelIdentity {
  path: string;
}

/** The repository's models/ folder (src/model -> ../../models), wherever the checkout lives. */
export const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

/**
 * The shipped model (committed with its .sha256 and models/MODEL_CARD.md). Changing it is a model upgrade:
 * FHIR identifiers include the version and sha256, so results of the new model are new resources.
 */
export const DEFAULT_MODEL_FILE = resolve(MODELS_DIR, 'vbmd-resunet3d-0.3.0.onnx');

const FILE_NAME = /^(.+)-(\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.]+)?)\.onnx$/;

/** `vbmd-resunet3d-1.2.0.onnx` -> name `vbmd-resunet3d`, version `1.2.0`. */
export function parseModelFileName(path: string): { name: string; version: string } | null {
  const m = FILE_NAME.exec(basename(path));
  return m ? { name: m[1], version: m[2] } : null;
}

export function sha256Path(modelPath: string): string {
  return modelPath.replace(/\.onnx$/, '.sha256');
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Finds, names and verifies a model file. Throws VbmdError('model') with one sentence naming the file and
 * what to do when the file or its .sha256 is missing, unreadable, misnamed, or does not match.
 */
export async function verifyModelFile(path: string): Promise<ModelFile> {
  const abs = resolve(path);
  const id = parseModelFileName(abs);
  if (!id) {
    throw new VbmdError('model', `The model file ${abs} is not named <name>-<version>.onnx; rename it (e.g. vbmd-resunet3d-1.0.0.onnx) so reports can name the model version.`);
  }
  try {
    const s = await stat(abs);
    if (!s.isFile()) throw new Error('not a file');
  } catch {
    throw new VbmdError(
      'model',
      `The model file ${abs} is missing; restore it from the repository (git checkout models/), point VBMD_MODEL_FILE at a model, or set VBMD_MODEL=false to run with the geometric ROI only.`,
    );
  }
  const shaFile = sha256Path(abs);
  let expected: string;
  try {
    const text = await readFile(shaFile, 'utf8');
    const m = /^\s*([0-9a-fA-F]{64})\b/.exec(text);
    if (!m) throw new Error('no digest');
    expected = m[1].toLowerCase();
  } catch {
    throw new VbmdError('model', `The model checksum file ${shaFile} is missing or holds no sha256 digest; restore it next to ${basename(abs)} (sha256sum format).`);
  }
  const actual = await sha256OfFile(abs);
  if (actual !== expected) {
    throw new VbmdError(
      'model',
      `The model file ${abs} is corrupt or not the committed one (sha256 ${actual.slice(0, 12)}... but ${basename(shaFile)} says ${expected.slice(0, 12)}...); restore it from the repository (git checkout models/, or git lfs pull).`,
      { actual, expected },
    );
  }
  return { path: abs, name: id.name, version: id.version, sha256: actual };
}
