// Worker entry: the project runs TypeScript through tsx; a worker thread does not inherit the parent's
// loader, so it registers tsx itself before importing the TypeScript worker (as src/dicom/codecs does).
import { register } from 'tsx/esm/api';

register();
await import('./helper-worker.ts');
