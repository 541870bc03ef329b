import { timingSafeEqual, createHash } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import { DICOM_UID_SYSTEM } from '../fhir/codes.js';
import { userMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { acceptCorrelationId } from '../util/log-context.js';
import { analysisJobData, analysisJobId, dicomUid } from './analysis-job.js';
import type { AnalysisJobData } from './analysis-job.js';
import { JOB_STATES } from './queue.js';
import type { JobInfo, JobQueue, JobState } from './queue.js';

/**
 * Study arrival over HTTP, for a PACS, a DICOM router or an EHR to call:
 * - `POST /api/studies/{StudyInstanceUID}/analyze[?reanalyze=true]` (body optional: patient, serviceRequest,
 *   accessionNumber, imagingStudy)
 * - `POST /api/notifications/imaging-study` with a FHIR ImagingStudy (or a notification Bundle holding one)
 * - `GET /api/jobs/{id}`: the job's state, attempts and failure reason; `GET /api/jobs?state=failed`: counts
 *   per state and the jobs in one state (default: failed), so operators see what failed and why, and
 *   `?state=needs-review` the studies held because their patient could not be confirmed.
 * Every call is authenticated (`authorize`); failures are a bare 401.
 */
export type ApiAuthorizer = (req: Request) => Promise<boolean>;

/** Static API bearer tokens, compared in constant time (hashes, so lengths do not leak either). */
export function staticTokenAuthorizer(tokens: readonly string[]): ApiAuthorizer {
  const digests = tokens.filter(Boolean).map((t) => createHash('sha256').update(t).digest());
  return async (req) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    if (!m) return false;
    const d = createHash('sha256').update(m[1]!).digest();
    let ok = false;
    for (const x of digests) ok = timingSafeEqual(x, d) || ok;
    return ok;
  };
}

/** A job as operators see it: the study record without the patient's name, birth date and ids (PHI). */
type PublicJob = JobInfo<Omit<AnalysisJobData, 'dicom'> & { dicom?: { series: Omit<NonNullable<AnalysisJobData['dicom']>['series'][number], 'patientId'>[] } }>;
function withoutIdentity(job: JobInfo<AnalysisJobData>): PublicJob {
  const { dicom, ...data } = job.data;
  if (!dicom) return { ...job, data };
  return { ...job, data: { ...data, dicom: { series: dicom.series.map(({ patientId: _id, ...s }) => s) } } };
}

export function anyAuthorizer(...auths: ApiAuthorizer[]): ApiAuthorizer {
  return async (req) => {
    for (const a of auths) if (await a(req)) return true;
    return false;
  };
}

const analyzeBody = analysisJobData.pick({ accessionNumber: true, patient: true, serviceRequest: true, imagingStudy: true }).strict();

const imagingStudyLike = z.looseObject({
  resourceType: z.literal('ImagingStudy'),
  id: z.string().optional(),
  identifier: z.array(z.looseObject({ system: z.string().optional(), value: z.string().optional() })).optional(),
  subject: z.looseObject({ reference: z.string().optional() }).optional(),
  basedOn: z.array(z.looseObject({ reference: z.string().optional() })).optional(),
});

function studyFromNotification(body: unknown): z.infer<typeof imagingStudyLike> | undefined {
  const direct = imagingStudyLike.safeParse(body);
  if (direct.success) return direct.data;
  const entries = (body as { entry?: { resource?: unknown }[] } | null)?.entry ?? [];
  for (const e of entries) {
    const p = imagingStudyLike.safeParse(e.resource);
    if (p.success) return p.data;
  }
  return undefined;
}

type StudyApiOptions = { queue: JobQueue<AnalysisJobData>; authorize: ApiAuthorizer; publicBaseUrl?: string };
type Enqueue = (req: Request, res: Response, data: AnalysisJobData, again?: boolean) => Promise<void>;

export function createStudyApiRouter(opts: StudyApiOptions): Router {
  const router = express.Router();
  const json = express.json({ limit: '2mb', type: () => true });
  const auth = (req: Request, res: Response, next: NextFunction): void => {
    opts.authorize(req).then(
      (ok) => (ok ? next() : void res.status(401).end()),
      (e: unknown) => next(e),
    );
  };
  const enqueue = enqueuer(opts);
  router.post('/api/studies/:uid/analyze', auth, json, analyzeHandler(enqueue));
  router.post('/api/notifications/imaging-study', auth, json, notificationHandler(enqueue));
  router.get('/api/jobs', auth, listJobsHandler(opts.queue));
  router.get('/api/jobs/:id', auth, getJobHandler(opts.queue));
  router.use('/api', apiErrorHandler);
  return router;
}

/** Queues one study and answers 202 with the job's URL. */
function enqueuer(opts: StudyApiOptions): Enqueue {
  const jobUrl = (req: Request, id: string): string =>
    `${opts.publicBaseUrl ?? `${req.protocol}://${req.get('host')}`}/api/jobs/${encodeURIComponent(id)}`;
  return async (req, res, data, again = false) => {
    // `?reanalyze=true` runs a study that was already analysed once more (e.g. after a model upgrade: the
    // FHIR write adds results for the new model version and never duplicates the old ones).
    const jobId = again ? `${analysisJobId(data.studyInstanceUid)}-r${Date.now()}` : analysisJobId(data.studyInstanceUid);
    const correlationId = acceptCorrelationId(req.get('x-correlation-id'));
    const { id, created } = await opts.queue.add({ ...data, correlationId }, { jobId });
    log.info({ jobId: id, created, trigger: data.trigger, correlationId }, 'analysis requested');
    res.setHeader('X-Correlation-Id', correlationId);
    res.status(202).location(jobUrl(req, id)).json({ jobId: id, created, status: jobUrl(req, id) });
  };
}

/** `POST /api/studies/{StudyInstanceUID}/analyze[?reanalyze=true]`. */
function analyzeHandler(enqueue: Enqueue): RequestHandler {
  return (req, res, next) => {
    const uid = dicomUid.safeParse(req.params.uid);
    if (!uid.success) {
      res.status(400).json({ error: 'bad-request', message: `The StudyInstanceUID in the path ${uid.error.issues[0]!.message}.` });
      return;
    }
    const body = req.body === undefined || (typeof req.body === 'object' && req.body !== null && Object.keys(req.body).length === 0) ? {} : req.body;
    const parsed = analyzeBody.safeParse(body);
    if (!parsed.success) {
      res.status(400).json({ error: 'bad-request', message: `Invalid analyze request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}.` });
      return;
    }
    const again = req.query.reanalyze === 'true' || req.query.reanalyze === '1';
    enqueue(req, res, { ...parsed.data, studyInstanceUid: uid.data, trigger: 'api' }, again).catch(next);
  };
}

/** `POST /api/notifications/imaging-study` with an ImagingStudy or a notification Bundle holding one. */
function notificationHandler(enqueue: Enqueue): RequestHandler {
  return (req, res, next) => {
    const study = studyFromNotification(req.body);
    const uidValue = study?.identifier?.find((i) => i.system === DICOM_UID_SYSTEM)?.value?.replace(/^urn:oid:/, '');
    const uid = dicomUid.safeParse(uidValue);
    if (!study || !uid.success) {
      res.status(400).json({ error: 'bad-request', message: 'Expected an ImagingStudy (or a Bundle holding one) with an identifier of system urn:dicom:uid (the StudyInstanceUID).' });
      return;
    }
    const patient = study.subject?.reference;
    const sr = study.basedOn?.map((b) => b.reference).find((r) => r?.startsWith('ServiceRequest/'));
    const data = analysisJobData.safeParse({
      studyInstanceUid: uid.data,
      ...(patient?.startsWith('Patient/') ? { patient } : {}),
      ...(sr ? { serviceRequest: sr } : {}),
      ...(study.id ? { imagingStudy: `ImagingStudy/${study.id}` } : {}),
      trigger: 'imagingstudy-notification',
    });
    if (!data.success) {
      res.status(400).json({ error: 'bad-request', message: `Invalid ImagingStudy notification: ${data.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.` });
      return;
    }
    enqueue(req, res, data.data).catch(next);
  };
}

const listQuery = z.object({
  state: z.enum(JOB_STATES as [JobState, ...JobState[]]).default('failed'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/** `GET /api/jobs?state=failed&limit=50`: counts per state and the jobs in one state. */
function listJobsHandler(queue: JobQueue<AnalysisJobData>): RequestHandler {
  return (req, res, next) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) {
      res.status(400).json({ error: 'bad-request', message: `Invalid job listing: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.` });
      return;
    }
    Promise.all([queue.counts(), queue.list(q.data.state, q.data.limit)]).then(
      ([counts, jobs]) => res.json({ counts, state: q.data.state, jobs: jobs.map(withoutIdentity) }),
      next,
    );
  };
}

/** `GET /api/jobs/{id}`. */
function getJobHandler(queue: JobQueue<AnalysisJobData>): RequestHandler {
  return (req, res, next) => {
    queue.get(String(req.params.id)).then((job) => {
      if (!job) {
        res.status(404).json({ error: 'not-found', message: `No job ${String(req.params.id)}.` });
        return;
      }
      res.json(withoutIdentity(job));
    }, next);
  };
}

function apiErrorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string };
  if (res.headersSent) return next(err);
  if (e?.type === 'entity.parse.failed') {
    res.status(400).json({ error: 'bad-request', message: 'The request body is not valid JSON.' });
    return;
  }
  log.error({ err: userMessage(err) }, 'study API failed');
  res.status(503).json({ error: 'unavailable', message: `The job queue did not accept the request: ${userMessage(err)}` });
}
