// Synth-time checks of what the four resource types take, in the words the provider itself
// answers with (src/policy.rs, src/diagnosis/resources.rs): a mistake shows up at `cdk synth`
// instead of as a FAILED stack event minutes into a deployment. Only what can be judged
// without ECR is checked here; values that are tokens (known at deploy time only) are left
// to the provider.
import { Token } from 'aws-cdk-lib';

/** Which policy a statement goes into. */
export enum PolicyKind {
  REGISTRY = 'registry',
  REPOSITORY = 'repository',
}

const MAX_QUOTED_CHARS = 80;

/** A value as the provider quotes it in a Reason: a JSON string, shortened. */
export function quote(value: string): string {
  const chars = Array.from(value);
  const shown = chars.length > MAX_QUOTED_CHARS ? chars.slice(0, MAX_QUOTED_CHARS - 1).join('') + '…' : value;
  return JSON.stringify(shown);
}

function quoteValue(value: unknown): string {
  if (typeof value === 'string') {
    return quote(value);
  }
  if (Array.isArray(value)) {
    const shown = value.slice(0, 2).map((v) => (typeof v === 'string' ? quote(v) : JSON.stringify(v)));
    if (value.length > 2) {
      shown.push('…');
    }
    return `[${shown.join(', ')}]`;
  }
  return JSON.stringify(value);
}

/** The statement as the provider names it: `statement 2 (Sid "Pull")`. */
function named(position: number, statement: Record<string, unknown>): string {
  const sid = statement.Sid;
  return typeof sid === 'string' && sid !== '' ? `statement ${position} (Sid ${quote(sid)})` : `statement ${position}`;
}

/**
 * The problems of one statement (as `toStatementJson()` gives it), each a sentence the
 * provider would answer with.
 */
export function statementProblems(kind: PolicyKind, position: number, statement: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const name = named(position, statement);
  if (!('Action' in statement) && !('NotAction' in statement)) {
    problems.push(`${name} has no Action; add the ECR actions it grants or denies`);
  }
  if ('Action' in statement && 'NotAction' in statement) {
    problems.push(`${name} has both Action and NotAction; keep only one`);
  }
  if (!('Principal' in statement) && !('NotPrincipal' in statement)) {
    problems.push(
      `${name} has no Principal; ECR policies are resource policies and must name who they apply ` +
        'to, e.g. "Principal": {"AWS": "arn:aws:iam::111122223333:root"}',
    );
  }
  if (kind === PolicyKind.REPOSITORY) {
    for (const key of ['Resource', 'NotResource']) {
      if (key in statement) {
        problems.push(
          `${name} has ${key} ${quoteValue(statement[key])}, but a repository policy applies to its own ` +
            `repository and ECR refuses ${key} in it: remove ${key}`,
        );
      }
    }
  } else if (!('Resource' in statement) && !('NotResource' in statement)) {
    problems.push(
      `${name} has no Resource; a registry policy statement names the repositories it applies to: ` +
        'add "Resource": "arn:<partition>:ecr:<region>:<account>:repository/<name or prefix*>" (or "*")',
    );
  }
  return problems;
}

/**
 * The problems of a statement resource's `Statement` property: at least one statement, each
 * with its own non-empty Sid, then each statement's own problems.
 */
export function statementsProblems(kind: PolicyKind, statements: Record<string, unknown>[]): string[] {
  if (statements.length === 0) {
    return ['property Statement is an empty list; give at least one statement'];
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  statements.forEach((statement, index) => {
    const position = index + 1;
    const sid = statement.Sid;
    if (sid === undefined || sid === '') {
      problems.push(
        `property Statement statement ${position} has no Sid; a statement resource names its statements by Sid: ` +
          'give each a unique, non-empty "Sid"',
      );
    } else if (typeof sid === 'string' && !Token.isUnresolved(sid)) {
      if (seen.has(sid)) {
        problems.push(`property Statement statement ${position} repeats Sid ${quote(sid)}; give each statement its own Sid`);
      }
      seen.add(sid);
    }
    problems.push(...statementProblems(kind, position, statement).map((p) => `property Statement ${p}`));
  });
  return problems;
}

/** The problems of a whole-policy resource's `PolicyText` property. */
export function policyProblems(kind: PolicyKind, statements: Record<string, unknown>[]): string[] {
  if (statements.length === 0) {
    return ['property PolicyText has no Statement; add a Statement list with at least one statement'];
  }
  return statements.flatMap((statement, index) =>
    statementProblems(kind, index + 1, statement).map((p) => `property PolicyText ${p}`),
  );
}

const RESOURCE_TYPE = 'Custom::ECRRepositoryPolicyStatement';
// ECR's creation templates' `Prefix` (botocore's model): ROOT, or this, 1 to 256 characters.
const PREFIX = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?$/;

/**
 * The problems of a repository statement's target: exactly one of a repository and a
 * prefix (CONTRACT 15), the prefix as ECR's repository creation templates take it. In the
 * provider's words (src/event.rs).
 */
export function repositoryStatementTargetProblems(hasRepository: boolean, prefix: string | undefined): string[] {
  if (hasRepository && prefix !== undefined) {
    return [
      'give exactly one of RepositoryName (one repository) and RepositoryPrefix (every repository under a prefix, ' +
        'such as team/ or ROOT), not both',
    ];
  }
  if (!hasRepository && prefix === undefined) {
    return [
      `property RepositoryName or RepositoryPrefix is required for ${RESOURCE_TYPE}: name the repository whose ` +
        'policy it adds to, or the prefix of the repositories',
    ];
  }
  if (prefix !== undefined && !Token.isUnresolved(prefix) && !validPrefix(prefix)) {
    return [
      `property RepositoryPrefix ${quote(prefix)} is not a prefix ECR's repository creation templates take: ROOT, ` +
        'or 1 to 256 lowercase letters, digits and . _ - / (for example team or team/app/)',
    ];
  }
  return [];
}

function validPrefix(prefix: string): boolean {
  return prefix === 'ROOT' || (prefix.length >= 1 && prefix.length <= 256 && PREFIX.test(prefix));
}
