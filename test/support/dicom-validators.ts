import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The DICOM checkers the tests run on what vbmd writes: dciodvfy (Debian dicom3tools) validates an object
 * against its IOD, dcmtk's dsrdump parses and prints an SR content tree. A missing tool stops the test with
 * one line naming the Debian package.
 */
const TOOLS = { dciodvfy: 'dicom3tools', dsrdump: 'dcmtk' } as const;

export function requireDicomTool(tool: keyof typeof TOOLS): string {
  const path = `/usr/bin/${tool}`;
  if (!existsSync(path)) throw new Error(`${tool} is missing: run  sudo apt-get install -y ${TOOLS[tool]}`);
  return path;
}

/** dciodvfy's "Error" lines for a file (warnings are returned apart; the private coding scheme warns). */
export function dciodvfy(file: string): { errors: string[]; warnings: string[]; iod: string } {
  const r = spawnSync(requireDicomTool('dciodvfy'), [file], { encoding: 'utf8' });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return {
    errors: lines.filter((l) => l.startsWith('Error')),
    warnings: lines.filter((l) => l.startsWith('Warning')),
    iod: lines.find((l) => /^[A-Za-z0-9]+$/.test(l)) ?? '',
  };
}

/** dsrdump's output and its complaints (E:/F: lines; W: about the UTF-8 VR checker is informational). */
export function dsrdump(file: string): { status: number | null; text: string; errors: string[] } {
  const r = spawnSync(requireDicomTool('dsrdump'), [file], { encoding: 'utf8' });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n');
  return { status: r.status, text: r.stdout, errors: lines.filter((l) => /^(E|F):/.test(l.trim())) };
}
