import * as crypto from 'crypto';
import { ResourceEnvironment, Stack, aws_ecr as ecr, aws_iam as iam } from 'aws-cdk-lib';
import type { IEcrPolicyProvider } from './provider';
import { RepositoryPolicyStatement } from './policies';

/** The actions of CDK's own `grantPull` on a repository. */
const PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'];
/** The actions of CDK's own `grantPush`. */
const PUSH_ACTIONS = [
  'ecr:CompleteLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:InitiateLayerUpload',
  'ecr:BatchCheckLayerAvailability',
  'ecr:PutImage',
];
// Hex digits of the digest in a derived Sid: 64 bits, so two grants never meet by chance.
const SID_DIGEST_CHARS = 16;
/** The longest Sid a derived one may be. */
export const MAX_DERIVED_SID_CHARS = 64;

function sameActions(a: string[], b: string[]): boolean {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** A word that says what a statement grants: Pull, Push, PullPush, or Grant for other actions. */
function label(actions: string[]): string {
  if (sameActions(actions, PULL_ACTIONS)) {
    return 'Pull';
  }
  if (sameActions(actions, PUSH_ACTIONS)) {
    return 'Push';
  }
  if (sameActions(actions, [...PULL_ACTIONS, ...PUSH_ACTIONS])) {
    return 'PullPush';
  }
  return 'Grant';
}

/**
 * A Sid derived from what a statement grants to whom: the same statement always gets the same
 * Sid (a redeploy changes nothing, the same grant twice is one resource), two different ones
 * never share it (a second grant never overwrites the first). Letters and digits only, at most
 * 64 characters: the kind of grant, the grantee's account when one is named, and a digest of
 * the principals, actions and conditions as CloudFormation will see them.
 */
export function deriveSid(stack: Stack, statement: iam.PolicyStatement): string {
  const json = stack.resolve(statement.toStatementJson()) as Record<string, unknown>;
  const digest = crypto.createHash('sha256').update(grantOf(json)).digest('hex').slice(0, SID_DIGEST_CHARS);
  const account = /(?:^|:)(\d{12})(?::|$)/.exec(JSON.stringify(json.Principal ?? ''))?.[1] ?? '';
  return `${label(actionsOf(json))}${account}${digest}`.slice(0, MAX_DERIVED_SID_CHARS);
}

function actionsOf(json: Record<string, unknown>): string[] {
  return ([] as string[]).concat((json.Action as string[] | string | undefined) ?? []);
}

/** What a statement grants to whom, whatever the order of its actions: what a Sid stands for. */
function grantOf(json: Record<string, unknown>): string {
  return stableJson({
    Effect: json.Effect,
    Principal: json.Principal ?? null,
    NotPrincipal: json.NotPrincipal ?? null,
    Action: [...new Set(actionsOf(json))].sort(),
    NotAction: json.NotAction ?? null,
    Resource: json.Resource ?? null,
    Condition: json.Condition ?? null,
  });
}

/** JSON with object keys sorted, so that key order never changes a digest. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(stableJson).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A repository's policy seen as IAM's resource policy, so that `iam.Grant` can add to it:
 * each statement becomes a `RepositoryPolicyStatement` of its own, under the repository.
 */
class RepositoryResourcePolicy implements iam.IResourceWithPolicyV2 {
  public readonly env: ResourceEnvironment;

  public constructor(
    private readonly repository: ecr.IRepository,
    private readonly provider: IEcrPolicyProvider | undefined,
  ) {
    this.env = repository.env;
  }

  public addToResourcePolicy(statement: iam.PolicyStatement): iam.AddToResourcePolicyResult {
    const stack = Stack.of(this.repository);
    const sid = statement.sid ?? deriveSid(stack, statement);
    const withSid = statement.sid ? statement : statement.copy({ sid });
    const id = `PolicyStatement${sid}`;
    const existing = this.repository.node.tryFindChild(id);
    if (existing instanceof RepositoryPolicyStatement) {
      const before = existing.statements.map((s) => grantOf(stack.resolve(s.toStatementJson())));
      if (before.length !== 1 || before[0] !== grantOf(stack.resolve(withSid.toStatementJson()))) {
        throw new Error(
          `Sid ${JSON.stringify(sid)} is given twice on repository ${this.repository.node.path} with different ` +
            'statements; give each statement its own Sid',
        );
      }
      return { statementAdded: true, policyDependable: existing };
    }
    const resource = new RepositoryPolicyStatement(this.repository, id, {
      repository: this.repository,
      statement: withSid,
      provider: this.provider,
    });
    return { statementAdded: true, policyDependable: resource };
  }
}

/**
 * Grants on a repository, imported or owned, that work where CDK's own do nothing: on an
 * imported repository, `repository.addToResourcePolicy()` and the grants' resource-policy
 * half are dropped. Here a principal of the repository's own account gets an identity policy,
 * as CDK does; any other principal a statement in the repository's policy, written by the
 * provider as a `Custom::ECRRepositoryPolicyStatement` of its own (Sid derived from the
 * grantee and the actions), beside every other statement there.
 *
 * @example
 * // TypeScript
 * const repository = ecr.Repository.fromRepositoryName(this, 'App', 'app');
 * const grants = RepositoryPolicyGrants.fromRepository(repository);
 * grants.pull(new iam.AccountPrincipal('111122223333'));
 * // Python
 * // repository = ecr.Repository.from_repository_name(self, "App", "app")
 * // grants = RepositoryPolicyGrants.from_repository(repository)
 * // grants.pull(iam.AccountPrincipal("111122223333"))
 */
export class RepositoryPolicyGrants {
  /**
   * The grants of `repository`.
   *
   * @param provider the provider that writes the statements
   * @default provider - `EcrPolicyProvider.fromExportName()`, one per stack
   */
  public static fromRepository(repository: ecr.IRepository, provider?: IEcrPolicyProvider): RepositoryPolicyGrants {
    return new RepositoryPolicyGrants(repository, provider);
  }

  private readonly policy: RepositoryResourcePolicy;

  private constructor(private readonly repository: ecr.IRepository, provider?: IEcrPolicyProvider) {
    this.policy = new RepositoryResourcePolicy(repository, provider);
  }

  /** Lets `grantee` do `actions` on the repository. */
  public actions(grantee: iam.IGrantable, ...actions: string[]): iam.Grant {
    return iam.Grant.addToPrincipalOrResource({
      grantee,
      actions,
      resourceArns: [this.repository.repositoryArn],
      // A repository policy applies to its own repository: no Resource in it.
      resourceSelfArns: [],
      resource: this.policy,
    });
  }

  /** Lets `grantee` pull images (and get the registry's login token). */
  public pull(grantee: iam.IGrantable): iam.Grant {
    return this.withLogin(grantee, this.actions(grantee, ...PULL_ACTIONS));
  }

  /** Lets `grantee` push images (and get the registry's login token). */
  public push(grantee: iam.IGrantable): iam.Grant {
    return this.withLogin(grantee, this.actions(grantee, ...PUSH_ACTIONS));
  }

  /** Lets `grantee` pull and push images (and get the registry's login token). */
  public pullPush(grantee: iam.IGrantable): iam.Grant {
    return this.withLogin(grantee, this.actions(grantee, ...PULL_ACTIONS, ...PUSH_ACTIONS));
  }

  /**
   * Adds `statement` to the repository's policy as a statement resource of its own; a
   * statement without a Sid gets one derived from its principals and actions.
   */
  public addToResourcePolicy(statement: iam.PolicyStatement): iam.AddToResourcePolicyResult {
    return this.policy.addToResourcePolicy(statement);
  }

  // As CDK's own grantPull: ecr:GetAuthorizationToken acts on the registry, so it can only be
  // in the principal's identity policy (where there is one).
  private withLogin(grantee: iam.IGrantable, grant: iam.Grant): iam.Grant {
    iam.Grant.addToPrincipal({ grantee, actions: ['ecr:GetAuthorizationToken'], resourceArns: ['*'] });
    return grant;
  }
}
