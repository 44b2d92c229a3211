import {
  Annotations,
  CustomResource,
  Lazy,
  RemovalPolicy,
  Stack,
  Token,
  aws_ecr as ecr,
  aws_iam as iam,
} from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import { EcrPolicyProvider, IEcrPolicyProvider } from './provider';
import { PolicyKind, policyProblems, quote, repositoryStatementTargetProblems, statementsProblems } from './validation';

/** The resource types of the provider (CONTRACT 2), exactly as it reads them. */
export enum PolicyResourceType {
  REGISTRY_POLICY = 'Custom::ECRRegistryPolicy',
  REPOSITORY_POLICY = 'Custom::ECRRepositoryPolicy',
  REGISTRY_POLICY_STATEMENT = 'Custom::ECRRegistryPolicyStatement',
  REPOSITORY_POLICY_STATEMENT = 'Custom::ECRRepositoryPolicyStatement',
}

/** What every one of the four resource types takes. */
export interface PolicyResourceOptions {
  /**
   * The provider whose function handles the resource.
   * @default - `EcrPolicyProvider.fromExportName()`, one per stack
   */
  readonly provider?: IEcrPolicyProvider;

  /**
   * Take over a policy (or, for statement resources, a statement with the same Sid) that
   * exists already instead of failing.
   * @default false
   */
  readonly adopt?: boolean;

  /**
   * Accept a statement that lets in every AWS account (a `Principal` of `*` with no
   * condition limiting it to named accounts or an organization).
   * @default false
   */
  readonly allowPublicAccess?: boolean;

  /**
   * What happens to the policy (or the statements) when the resource leaves the stack.
   * @default RemovalPolicy.DESTROY (the provider removes what it wrote)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** A registry's region: the registry types only. */
export interface RegistryTargetOptions {
  /**
   * The region whose registry policy is managed.
   * @default - the provider function's region
   */
  readonly region?: string;
}

/** A repository: the repository types only. */
export interface RepositoryTargetOptions {
  /**
   * The repository whose policy is managed; imported (`fromRepositoryName`,
   * `fromRepositoryArn`, `fromRepositoryAttributes`, `fromLookup`) or owned. Its region is
   * the target's.
   */
  readonly repository: ecr.IRepository;

  /**
   * Passed as `force` to ECR's SetRepositoryPolicy.
   * @default false
   */
  readonly force?: boolean;
}

/** The properties of a `RegistryPolicy`. */
export interface RegistryPolicyProps extends PolicyResourceOptions, RegistryTargetOptions {
  /** The whole registry permissions policy. */
  readonly policyDocument: iam.PolicyDocument;
}

/** The properties of a `RepositoryPolicy`. */
export interface RepositoryPolicyProps extends PolicyResourceOptions, RepositoryTargetOptions {
  /** The whole repository policy (no `Resource` in its statements). */
  readonly policyDocument: iam.PolicyDocument;
}

/** The statements of a statement resource: one, several, or both. */
export interface StatementsOptions {
  /**
   * One statement, with a Sid.
   * @default - none; give `statement`, `statements` or `addStatements()`
   */
  readonly statement?: iam.PolicyStatement;

  /**
   * Several statements, each with a Sid of its own.
   * @default - none
   */
  readonly statements?: iam.PolicyStatement[];
}

/** The properties of a `RegistryPolicyStatement`. */
export interface RegistryPolicyStatementProps extends PolicyResourceOptions, RegistryTargetOptions, StatementsOptions {}

/**
 * The properties of a `RepositoryPolicyStatement`: one repository (`repository`), or every
 * repository under a prefix (`repositoryPrefix`), exactly one of the two.
 */
export interface RepositoryPolicyStatementProps extends PolicyResourceOptions, StatementsOptions {
  /**
   * The repository whose policy the statements go into; imported (`fromRepositoryName`,
   * `fromRepositoryArn`, `fromRepositoryAttributes`, `fromLookup`) or owned. Its region is
   * the target's.
   * @default - none; give `repository` or `repositoryPrefix`
   */
  readonly repository?: ecr.IRepository;

  /**
   * Every repository under this prefix, those there now and those created later, and the
   * `repositoryPolicy` of every repository creation template at or under it, in the provider
   * function's region (`RepositoryPrefix`). Read as ECR's creation templates read it: `team`
   * and `team/` both match `team/app` and `team/a/b`, never `team` itself nor `team-x`;
   * `ROOT` matches every repository, and only a `ROOT` prefix reaches the `ROOT` template.
   * @default - none; give `repository` or `repositoryPrefix`
   */
  readonly repositoryPrefix?: string;

  /**
   * Passed as `force` to ECR's SetRepositoryPolicy.
   * @default false
   */
  readonly force?: boolean;
}

/** What the statement resources take, besides their target. */
export interface StatementsResourceProps extends PolicyResourceOptions, StatementsOptions {}

function kindOf(resourceType: PolicyResourceType): PolicyKind {
  return resourceType === PolicyResourceType.REGISTRY_POLICY || resourceType === PolicyResourceType.REGISTRY_POLICY_STATEMENT
    ? PolicyKind.REGISTRY
    : PolicyKind.REPOSITORY;
}

/** What the four resource types share: the custom resource and the attributes every one returns. */
export abstract class PolicyResource extends Construct {
  /** The custom resource. */
  public readonly resource: CustomResource;
  /** The PhysicalResourceId (`Ref`): the registry, the repository's ARN, or the statements' id. */
  public readonly physicalResourceId: string;
  /** The account id that owns the registry. */
  public readonly registryId: string;
  /** The region of the registry or repository. */
  public readonly region: string;
  /** `"true"` when the Create took over a policy (or statement) that was already there. */
  public readonly adopted: string;
  /**
   * Who the resource's statements let in: `public`, `organization:<ids>`, `accounts:<ids>`,
   * `services:<hosts>` joined by `;`, or `account`.
   */
  public readonly access: string;
  /** The provider the resource uses. */
  public readonly provider: IEcrPolicyProvider;

  protected constructor(
    scope: Construct,
    id: string,
    options: PolicyResourceOptions,
    resourceType: PolicyResourceType,
    targetProperties: { [key: string]: any },
  ) {
    super(scope, id);
    this.provider = options.provider ?? EcrPolicyProvider.defaultFor(this);
    const properties: Record<string, unknown> = { ...targetProperties };
    if (options.adopt !== undefined) {
      properties.Adopt = options.adopt;
    }
    if (options.allowPublicAccess !== undefined) {
      properties.AllowPublicAccess = options.allowPublicAccess;
    }
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.provider.serviceToken,
      resourceType,
      properties,
      removalPolicy: options.removalPolicy,
    });
    this.physicalResourceId = this.resource.ref;
    this.registryId = this.resource.getAttString('RegistryId');
    this.region = this.resource.getAttString('Region');
    this.adopted = this.resource.getAttString('Adopted');
    this.access = this.resource.getAttString('Access');
  }
}

function documentStatements(scope: IConstruct, document: iam.PolicyDocument): Record<string, unknown>[] {
  const json = Stack.of(scope).resolve(document.toJSON()) as { Statement?: Record<string, unknown>[] } | undefined;
  return json?.Statement ?? [];
}

/** The region property of a repository type: the repository's, when not the stack's own. */
function repositoryTarget(scope: IConstruct, options: RepositoryTargetOptions): Record<string, unknown> {
  const properties: Record<string, unknown> = { RepositoryName: options.repository.repositoryName };
  const region = options.repository.env.region;
  if (region !== Stack.of(scope).region) {
    properties.Region = region;
  }
  if (options.force !== undefined) {
    properties.Force = options.force;
  }
  return properties;
}

/** A repository statement's target: its repository's, or its prefix. */
function statementTarget(scope: IConstruct, props: RepositoryPolicyStatementProps): Record<string, unknown> {
  if (props.repository) {
    const target = repositoryTarget(scope, { repository: props.repository, force: props.force });
    return props.repositoryPrefix !== undefined ? { ...target, RepositoryPrefix: props.repositoryPrefix } : target;
  }
  const target: Record<string, unknown> = {};
  if (props.repositoryPrefix !== undefined) {
    target.RepositoryPrefix = props.repositoryPrefix;
  }
  if (props.force !== undefined) {
    target.Force = props.force;
  }
  return target;
}

function registryTarget(options: RegistryTargetOptions): Record<string, unknown> {
  return options.region !== undefined ? { Region: options.region } : {};
}

/** An owned repository whose own RepositoryPolicyText would rewrite the whole policy. */
function warnIfOwnedWithPolicy(scope: IConstruct, repository: ecr.IRepository): void {
  const child = repository.node.defaultChild;
  if (child instanceof ecr.CfnRepository) {
    scope.node.addDependency(repository);
    scope.node.addValidation({
      validate: () => {
        if (Stack.of(child).resolve(child.repositoryPolicyText) !== undefined) {
          Annotations.of(scope).addWarningV2(
            'ecr-policy-provider-cdk:ownedRepositoryPolicy',
            `repository ${repository.node.path} sets its own RepositoryPolicyText, which CloudFormation writes whole ` +
              'on every change of it, erasing statements managed here: put its statements here instead',
          );
        }
        return [];
      },
    });
  }
}

/**
 * The registry permissions policy of the account in one region, owned whole by this
 * resource (`Custom::ECRRegistryPolicy`): anything else in it goes.
 *
 * @example
 * // TypeScript
 * new RegistryPolicy(this, 'Replication', {
 *   policyDocument: new iam.PolicyDocument({ statements: [new iam.PolicyStatement({
 *     sid: 'ReplicationFromTeamA',
 *     principals: [new iam.AccountPrincipal('111122223333')],
 *     actions: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
 *     resources: [`arn:aws:ecr:${this.region}:${this.account}:repository/team-a/*`],
 *   })] }),
 * });
 * // Python
 * // RegistryPolicy(self, "Replication", policy_document=iam.PolicyDocument(statements=[...]))
 */
export class RegistryPolicy extends PolicyResource {
  /** The policy as written, compact JSON (absent when the response would pass 4 KB). */
  public readonly policyText: string;

  public constructor(scope: Construct, id: string, props: RegistryPolicyProps) {
    super(scope, id, props, PolicyResourceType.REGISTRY_POLICY, {
      PolicyText: props.policyDocument,
      ...registryTarget(props),
    });
    this.policyText = this.resource.getAttString('PolicyText');
    this.node.addValidation({ validate: () => policyProblems(PolicyKind.REGISTRY, documentStatements(this, props.policyDocument)) });
  }
}

/**
 * The policy of one repository, owned whole by this resource (`Custom::ECRRepositoryPolicy`).
 *
 * @example
 * // TypeScript
 * new RepositoryPolicy(this, 'AppPolicy', {
 *   repository: ecr.Repository.fromRepositoryName(this, 'App', 'app'),
 *   policyDocument: document,
 *   adopt: true,
 * });
 * // Python
 * // RepositoryPolicy(self, "AppPolicy",
 * //     repository=ecr.Repository.from_repository_name(self, "App", "app"),
 * //     policy_document=document, adopt=True)
 */
export class RepositoryPolicy extends PolicyResource {
  /** The policy as written, compact JSON (absent when the response would pass 4 KB). */
  public readonly policyText: string;
  /** The repository's name. */
  public readonly repositoryName: string;
  /** The repository's ARN. */
  public readonly repositoryArn: string;

  public constructor(scope: Construct, id: string, props: RepositoryPolicyProps) {
    super(scope, id, props, PolicyResourceType.REPOSITORY_POLICY, {
      PolicyText: props.policyDocument,
      ...repositoryTarget(scope, props),
    });
    this.policyText = this.resource.getAttString('PolicyText');
    this.repositoryName = this.resource.getAttString('RepositoryName');
    this.repositoryArn = this.resource.getAttString('RepositoryArn');
    warnIfOwnedWithPolicy(this, props.repository);
    this.node.addValidation({
      validate: () => policyProblems(PolicyKind.REPOSITORY, documentStatements(this, props.policyDocument)),
    });
  }
}

/** What statement resources share: their statements, `addStatements()`, their Sids. */
export abstract class StatementsResource extends PolicyResource {
  /** The Sids of the resource's statements, comma-separated. */
  public readonly sids: string;
  private readonly statementList: iam.PolicyStatement[];
  private readonly kind: PolicyKind;

  protected constructor(
    scope: Construct,
    id: string,
    props: StatementsResourceProps,
    resourceType: PolicyResourceType,
    targetProperties: { [key: string]: any },
  ) {
    const statementList = [...(props.statement ? [props.statement] : []), ...(props.statements ?? [])];
    super(scope, id, props, resourceType, {
      Statement: Lazy.any({ produce: () => statementList.map((s) => s.toStatementJson()) }),
      ...targetProperties,
    });
    this.statementList = statementList;
    this.kind = kindOf(resourceType);
    this.sids = this.resource.getAttString('Sids');
    this.node.addValidation({ validate: () => this.problems() });
  }

  /** Adds statements, each with a Sid of its own, to the ones this resource holds. */
  public addStatements(...statements: iam.PolicyStatement[]): void {
    this.statementList.push(...statements);
  }

  /** The statements this resource holds. */
  public get statements(): iam.PolicyStatement[] {
    return [...this.statementList];
  }

  /** The Sids of the statements, as far as they are known at synth time. */
  public get statementSids(): string[] {
    return this.statementList.map((s) => s.sid).filter((sid): sid is string => sid !== undefined && !Token.isUnresolved(sid));
  }

  /** Which target the resource's statements go to, for the Sid check across resources. */
  protected abstract targetKey(): string;

  private problems(): string[] {
    const resolved = this.statementList.map((s) => Stack.of(this).resolve(s.toStatementJson()) as Record<string, unknown>);
    const problems = statementsProblems(this.kind, resolved);
    // Another statement resource of this stack on the same target holding one of these Sids
    // would be refused at deploy time; say so now.
    const mine = new Set(this.statementSids);
    const key = this.targetKey();
    for (const other of Stack.of(this).node.findAll()) {
      if (other === this || !(other instanceof StatementsResource) || other.targetKey() !== key) {
        continue;
      }
      const shared = other.statementSids.filter((sid) => mine.has(sid));
      if (shared.length > 0 && other.node.path < this.node.path) {
        problems.push(
          `property Statement names Sid ${shared.map(quote).join(', ')}, which ${other.node.path} also holds on the ` +
            'same policy; one resource holds a Sid at a time: give each statement its own Sid',
        );
      }
    }
    return problems;
  }
}

/**
 * Some statements, by Sid, inside the registry policy of the account in one region
 * (`Custom::ECRRegistryPolicyStatement`); every other statement stays as it is.
 *
 * @example
 * // TypeScript
 * new RegistryPolicyStatement(this, 'TeamA', {
 *   statement: new iam.PolicyStatement({
 *     sid: 'ReplicationFromTeamA',
 *     principals: [new iam.AccountPrincipal('111122223333')],
 *     actions: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
 *     resources: [`arn:aws:ecr:${this.region}:${this.account}:repository/team-a/*`],
 *   }),
 * });
 * // Python
 * // RegistryPolicyStatement(self, "TeamA", statement=iam.PolicyStatement(
 * //     sid="ReplicationFromTeamA",
 * //     principals=[iam.AccountPrincipal("111122223333")],
 * //     actions=["ecr:CreateRepository", "ecr:ReplicateImage"],
 * //     resources=[f"arn:aws:ecr:{self.region}:{self.account}:repository/team-a/*"]))
 */
export class RegistryPolicyStatement extends StatementsResource {
  private readonly regionKey: string;

  public constructor(scope: Construct, id: string, props: RegistryPolicyStatementProps) {
    super(scope, id, props, PolicyResourceType.REGISTRY_POLICY_STATEMENT, registryTarget(props));
    this.regionKey = `registry:${props.region ?? ''}`;
  }

  protected targetKey(): string {
    return this.regionKey;
  }
}

/**
 * Some statements, by Sid, inside the policy of one repository
 * (`Custom::ECRRepositoryPolicyStatement`); every other statement (the console's, Lambda's
 * own grant) stays as it is. `RepositoryPolicyGrants` makes these for you.
 *
 * @example
 * // TypeScript
 * new RepositoryPolicyStatement(this, 'Pull', {
 *   repository: ecr.Repository.fromRepositoryName(this, 'App', 'app'),
 *   statement: new iam.PolicyStatement({
 *     sid: 'PullFromBuild',
 *     principals: [new iam.AccountPrincipal('111122223333')],
 *     actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
 *   }),
 * });
 * // Every repository under team/, now and later, and the creation templates at or under it
 * new RepositoryPolicyStatement(this, 'TeamPull', {
 *   repositoryPrefix: 'team/',
 *   statement: new iam.PolicyStatement({
 *     sid: 'TeamPull',
 *     principals: [new iam.AccountPrincipal('111122223333')],
 *     actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
 *   }),
 * });
 * // Python
 * // RepositoryPolicyStatement(self, "Pull",
 * //     repository=ecr.Repository.from_repository_name(self, "App", "app"),
 * //     statement=iam.PolicyStatement(sid="PullFromBuild",
 * //         principals=[iam.AccountPrincipal("111122223333")],
 * //         actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]))
 * // RepositoryPolicyStatement(self, "TeamPull", repository_prefix="team/",
 * //     statement=iam.PolicyStatement(sid="TeamPull",
 * //         principals=[iam.AccountPrincipal("111122223333")],
 * //         actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]))
 */
export class RepositoryPolicyStatement extends StatementsResource {
  /** The repository's name (a statement on one repository). */
  public readonly repositoryName: string;
  /** The repository's ARN (a statement on one repository). */
  public readonly repositoryArn: string;
  /** How many repositories hold the statements now (a statement on a prefix). */
  public readonly repositories: string;
  /**
   * The prefixes of the repository creation templates that hold the statements, joined by
   * `,` (a statement on a prefix).
   */
  public readonly templates: string;
  private readonly repositoryKey: string;

  public constructor(scope: Construct, id: string, props: RepositoryPolicyStatementProps) {
    super(scope, id, props, PolicyResourceType.REPOSITORY_POLICY_STATEMENT, statementTarget(scope, props));
    this.repositoryName = this.resource.getAttString('RepositoryName');
    this.repositoryArn = this.resource.getAttString('RepositoryArn');
    this.repositories = this.resource.getAttString('Repositories');
    this.templates = this.resource.getAttString('Templates');
    const prefix = props.repositoryPrefix;
    this.repositoryKey = props.repository
      ? `repository:${JSON.stringify(Stack.of(this).resolve(props.repository.repositoryArn))}`
      : `prefix:${JSON.stringify(Stack.of(this).resolve(prefix?.replace(/\/$/, '')))}`;
    if (props.repository) {
      warnIfOwnedWithPolicy(this, props.repository);
    }
    this.node.addValidation({
      validate: () => repositoryStatementTargetProblems(props.repository !== undefined, prefix),
    });
  }

  protected targetKey(): string {
    return this.repositoryKey;
  }
}
