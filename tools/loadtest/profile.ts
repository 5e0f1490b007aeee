import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** One siege invocation of the course's script: `siege -c <users> -d <delay> -t <duration>`. */
export interface Stage {
  /** concurrent virtual users */
  users: number;
  /** each user waits a uniformly random 0..delaySeconds before every request (siege's -d) */
  delaySeconds: number;
  durationSeconds: number;
}

export interface Profile {
  name: string;
  stages: Stage[];
}

const stageGroupSchema = z.object({
  users: z.number().int().positive(),
  delaySeconds: z.number().nonnegative(),
  durationSeconds: z.number().positive(),
  repeat: z.number().int().positive().default(1),
});

const profileFileSchema = z.object({
  name: z.string().min(1).optional(),
  stages: z.array(stageGroupSchema).min(1),
});

type StageGroup = z.input<typeof stageGroupSchema>;

function expand(name: string, groups: StageGroup[]): Profile {
  const stages: Stage[] = [];
  for (const group of groups) {
    const { repeat, ...stage } = stageGroupSchema.parse(group);
    for (let i = 0; i < repeat; i++) stages.push({ ...stage });
  }
  return { name, stages };
}

// The course's load_test.sh: 30 one-minute siege runs, a slow ramp up to a 30-user burst, then a cool-down.
const COURSE_GROUPS: StageGroup[] = [
  { repeat: 5, users: 20, delaySeconds: 100, durationSeconds: 60 },
  { repeat: 2, users: 20, delaySeconds: 50, durationSeconds: 60 },
  { repeat: 2, users: 20, delaySeconds: 10, durationSeconds: 60 },
  { repeat: 1, users: 20, delaySeconds: 3, durationSeconds: 60 },
  { repeat: 5, users: 20, delaySeconds: 1, durationSeconds: 60 },
  { repeat: 5, users: 30, delaySeconds: 1, durationSeconds: 60 },
  { repeat: 1, users: 20, delaySeconds: 3, durationSeconds: 60 },
  { repeat: 2, users: 20, delaySeconds: 60, durationSeconds: 60 },
  { repeat: 7, users: 20, delaySeconds: 80, durationSeconds: 60 },
];

/**
 * `quick` keeps the course's shape by shrinking time itself: stages and think times both scale by 1/15, so each
 * user makes the same number of requests per stage as in `course` and the offered load (requests/s) is 15× higher
 * only where the server is not yet the bottleneck. 30 stages × 4 s = 2 minutes.
 */
const QUICK_TIME_SCALE = 1 / 15;

export const BUILTIN_PROFILES = {
  course: () => expand('course', COURSE_GROUPS),
  quick: () =>
    expand(
      'quick',
      COURSE_GROUPS.map((group) => ({
        ...group,
        delaySeconds: Number((group.delaySeconds * QUICK_TIME_SCALE).toFixed(3)),
        durationSeconds: group.durationSeconds * QUICK_TIME_SCALE,
      })),
    ),
} as const;

/** `course`, `quick`, or the path of a JSON file `{ "name"?, "stages": [{ users, delaySeconds, durationSeconds, repeat? }] }`. */
export function loadProfile(nameOrPath: string): Profile {
  if (nameOrPath in BUILTIN_PROFILES) return BUILTIN_PROFILES[nameOrPath as keyof typeof BUILTIN_PROFILES]();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(nameOrPath, 'utf8'));
  } catch (err) {
    throw new Error(
      `profile "${nameOrPath}" is neither ${Object.keys(BUILTIN_PROFILES).join(' nor ')} nor a readable JSON file: ${(err as Error).message}`,
    );
  }
  const parsed = profileFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`profile file ${nameOrPath} is invalid: ${z.prettifyError(parsed.error)}`);
  }
  return expand(parsed.data.name ?? nameOrPath, parsed.data.stages);
}

export function profileSeconds(profile: Profile): number {
  return profile.stages.reduce((sum, s) => sum + s.durationSeconds, 0);
}
