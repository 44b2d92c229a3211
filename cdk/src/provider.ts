import * as fs from 'fs';
import * as path from 'path';
import {
  Annotations,
  CfnDeletionPolicy,
  CfnOutput,
  CfnResource,
  Duration,
  Fn,
  Stack,
  Token,
  aws_cloudwatch as cloudwatch,
  aws_dynamodb as dynamodb,
  aws_ecr as ecr,
  aws_events as events,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_s3_assets as s3_assets,
  aws_sns as sns,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import { RepositoryPolicyGrants } from './grants';

/**
 * The export `sam deploy` of the provider's template.yaml creates (stack name
 * `ecr-policy-provider`), and the StackSet edition too.
 */
export const DEFAULT_EXPORT_NAME = 'ecr-policy-provider-ServiceToken';

/**
 * A deployed ecr-policy-provider: the Lambda function whose ARN is the `ServiceToken` of the
 * four resource types.
 */
export interface IEcrPolicyProvider extends IConstruct {
  /** The provider function's ARN, the `ServiceToken` of its custom resources. */
  readonly serviceToken: string;

  /**
   * Lets `grantee` pull images from `repository` (an imported one too).
   *
   * A principal of the repository's own account gets an identity policy, as CDK's own grants
   * do; any other principal gets a statement in the repository's policy
   * (`Custom::ECRRepositoryPolicyStatement`), beside every other statement there.
   */
  grantPull(repository: ecr.IRepository, grantee: iam.IGrantable): iam.Grant;

  /** Lets `grantee` pull and push images in `repository`, as `grantPull` does. */
  grantPullPush(repository: ecr.IRepository, grantee: iam.IGrantable): iam.Grant;

  /**
   * Adds `statement` to the policy of `repository` (an imported one too), as a
   * `Custom::ECRRepositoryPolicyStatement` of its own: every other statement stays. A
   * statement without a Sid gets one derived from its principals and actions.
   */
  addToResourcePolicy(repository: ecr.IRepository, statement: iam.PolicyStatement): iam.AddToResourcePolicyResult;
}

/** What `new EcrPolicyProvider` and the imported providers share: the grants. */
export abstract class EcrPolicyProviderBase extends Construct implements IEcrPolicyProvider {
  public abstract readonly serviceToken: string;

  public grantPull(repository: ecr.IRepository, grantee: iam.IGrantable): iam.Grant {
    return RepositoryPolicyGrants.fromRepository(repository, this).pull(grantee);
  }

  public grantPullPush(repository: ecr.IRepository, grantee: iam.IGrantable): iam.Grant {
    return RepositoryPolicyGrants.fromRepository(repository, this).pullPush(grantee);
  }

  public addToResourcePolicy(repository: ecr.IRepository, statement: iam.PolicyStatement): iam.AddToResourcePolicyResult {
    return RepositoryPolicyGrants.fromRepository(repository, this).addToResourcePolicy(statement);
  }
}

/** Whether the provider accepts a statement that lets in every AWS account. */
export enum PublicAccess {
  /** Refused unless the resource sets `allowPublicAccess` (the template's default). */
  BLOCK = 'Block',
  /** Accepted from every resource. */
  ALLOW = 'Allow',
}

/** What the provider does when a policy it manages is changed out of band. */
export enum DriftAction {
  /** Logs the drift and counts it in the `DriftedTargets` metric (the template's default). */
  REPORT = 'Report',
  /** Also writes back the held statements and owned policies. */
  RESTORE = 'Restore',
}

/**
 * The settings of a provider deployed by `new EcrPolicyProvider`: the parameters of the
 * provider's `template.yaml`, with the same defaults.
 */
export interface EcrPolicyProviderProps {
  /**
   * The instruction set the function runs on; the package carries the function for it.
   * @default lambda.Architecture.ARM_64 (template parameter `Architecture`)
   */
  readonly architecture?: lambda.Architecture;

  /**
   * How long ECR rejections caused by IAM's eventual consistency are retried, at most 150 s.
   * @default Duration.seconds(120) (template parameter `IamPropagationTimeoutSeconds`)
   */
  readonly iamPropagationTimeout?: Duration;

  /**
   * Whether a statement that lets in every AWS account is refused unless its resource sets
   * `allowPublicAccess`.
   * @default PublicAccess.BLOCK (template parameter `PublicAccess`)
   */
  readonly publicAccess?: PublicAccess;

  /**
   * What happens when a managed policy is changed out of band.
   * @default DriftAction.REPORT (template parameter `DriftAction`)
   */
  readonly driftAction?: DriftAction;

  /**
   * When every managed policy is compared with the provider's record.
   * @default events.Schedule.expression('rate(1 day)') (template parameter `DriftSweepSchedule`)
   */
  readonly driftSweepSchedule?: events.Schedule;

  /**
   * The SNS topic the drift alarm notifies.
   * @default - an alarm with no action (template parameter `DriftAlarmTopicArn`)
   */
  readonly driftAlarmTopic?: sns.ITopic;

  /**
   * How long CloudWatch Logs keeps the function's log events.
   * @default logs.RetentionDays.ONE_MONTH (template parameter `LogRetentionInDays`)
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * A KMS key to encrypt the function's log group with (its key policy must allow
   * `logs.<region>.amazonaws.com`).
   * @default - CloudWatch Logs' own encryption (template parameter `LogKmsKeyArn`)
   */
  readonly logEncryptionKey?: kms.IKey;

  /**
   * Exports the service token under this name, for `EcrPolicyProvider.fromExportName` in
   * other stacks and apps.
   * @default - no export
   */
  readonly exportName?: string;
}

const MAX_IAM_PROPAGATION_SECONDS = 150;
const DEFAULT_IAM_PROPAGATION_SECONDS = 120;
// The function's timeout: the IAM-propagation retry, the ECR calls around it, and the time
// kept back for the response (template.yaml explains the sum).
const TIMEOUT_SECONDS = 180;
const DEAD_LETTER_RETENTION_SECONDS = 1209600;
const DEFAULT_SCHEDULE = 'rate(1 day)';
/** The directory of the function's zips inside the package, one per architecture. */
export const ASSETS_DIR = path.join(__dirname, '..', 'assets');

/** What the package's `assets/manifest.json` says about one architecture's zip. */
interface AssetEntry {
  readonly file: string;
  readonly sha256: string;
  readonly release: boolean;
}

function readManifest(): Record<string, AssetEntry> {
  const file = path.join(ASSETS_DIR, 'manifest.json');
  if (!fs.existsSync(file)) {
    return {};
  }
  return JSON.parse(fs.readFileSync(file, 'utf-8'));
}

// What checkov is told about a resource, as template.yaml tells it (docs/security.md).
function skipCheckov(resource: CfnResource, ...skips: [string, string][]): void {
  resource.addMetadata('checkov', { skip: skips.map(([id, comment]) => ({ id, comment })) });
}

/**
 * The provider: deployed by this construct, or one deployed already (`fromServiceToken`,
 * `fromExportName`).
 *
 * `new EcrPolicyProvider` deploys what the provider's `template.yaml` deploys: the function
 * (from the release zip shipped inside this package: no Rust, Docker or build on your
 * machine), its execution role, the lock table, the drift rules, the dead-letter queue, the
 * log group and the drift alarm.
 *
 * @example
 * // TypeScript
 * const provider = new EcrPolicyProvider(this, 'EcrPolicyProvider', {
 *   driftAction: DriftAction.RESTORE,
 * });
 * // Python
 * // provider = EcrPolicyProvider(self, "EcrPolicyProvider", drift_action=DriftAction.RESTORE)
 */
export class EcrPolicyProvider extends EcrPolicyProviderBase {
  /**
   * A provider deployed elsewhere, by its function's ARN.
   *
   * @example
   * // TypeScript
   * const provider = EcrPolicyProvider.fromServiceToken(this, 'Provider', serviceToken);
   * // Python
   * // provider = EcrPolicyProvider.from_service_token(self, "Provider", service_token)
   */
  public static fromServiceToken(scope: Construct, id: string, serviceToken: string): IEcrPolicyProvider {
    class Import extends EcrPolicyProviderBase {
      public readonly serviceToken = serviceToken;
    }
    return new Import(scope, id);
  }

  /**
   * A provider deployed once per account and region with `sam deploy` (or the StackSet
   * edition), through its export (`Fn::ImportValue`).
   *
   * @param exportName the export of the provider's `ServiceToken` output
   * @default exportName 'ecr-policy-provider-ServiceToken'
   * @example
   * // TypeScript
   * const provider = EcrPolicyProvider.fromExportName(this, 'Provider');
   * // Python
   * // provider = EcrPolicyProvider.from_export_name(self, "Provider")
   */
  public static fromExportName(scope: Construct, id: string, exportName?: string): IEcrPolicyProvider {
    return EcrPolicyProvider.fromServiceToken(scope, id, Fn.importValue(exportName ?? DEFAULT_EXPORT_NAME));
  }

  /**
   * The provider a resource uses when it names none: one `fromExportName()` per stack, with
   * the default export name.
   */
  public static defaultFor(scope: Construct): IEcrPolicyProvider {
    const stack = Stack.of(scope);
    const id = 'EcrPolicyProviderDefault';
    const existing = stack.node.tryFindChild(id);
    return (existing as IEcrPolicyProvider | undefined) ?? EcrPolicyProvider.fromExportName(stack, id);
  }

  public readonly serviceToken: string;
  /** The provider function. */
  public readonly providerFunction: lambda.CfnFunction;
  /** The function's execution role. */
  public readonly role: iam.CfnRole;
  /** The lock table, which also holds the record of what each resource holds. */
  public readonly lockTable: dynamodb.CfnTable;
  /** The function's log group. */
  public readonly logGroup: logs.CfnLogGroup;
  /** Where failed asynchronous invocations go. */
  public readonly deadLetterQueue: sqs.CfnQueue;
  /** The alarm on the `DriftedTargets` metric. */
  public readonly driftAlarm: cloudwatch.CfnAlarm;

  public constructor(scope: Construct, id: string, props: EcrPolicyProviderProps = {}) {
    super(scope, id);
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const iamSeconds = props.iamPropagationTimeout?.toSeconds() ?? DEFAULT_IAM_PROPAGATION_SECONDS;
    if (!Token.isUnresolved(iamSeconds) && (iamSeconds < 0 || iamSeconds > MAX_IAM_PROPAGATION_SECONDS)) {
      throw new Error(
        `iamPropagationTimeout is ${iamSeconds} seconds; it must be between 0 and ${MAX_IAM_PROPAGATION_SECONDS} ` +
          `(the function's ${TIMEOUT_SECONDS}-second timeout bounds it, and above ${MAX_IAM_PROPAGATION_SECONDS} the retry ` +
          'would crowd out the remaining ECR calls and the response)',
      );
    }
    const entry = readManifest()[architecture.name];
    if (entry === undefined) {
      throw new Error(
        `this build of ecr-policy-provider-cdk carries no function for ${architecture.name} ` +
          `(no entry in ${path.join(ASSETS_DIR, 'manifest.json')}); use the other architecture, ` +
          'or build the package with scripts/cdk-function (docs/cdk.md)',
      );
    }
    if (!entry.release) {
      Annotations.of(this).addWarningV2(
        'ecr-policy-provider-cdk:testFunction',
        `the ${architecture.name} function in this package is a test stand-in, not the provider: ` +
          'build the package with `scripts/cdk-function --release` before deploying (docs/cdk.md)',
      );
    }

    this.logGroup = new logs.CfnLogGroup(this, 'LogGroup', {
      retentionInDays: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      kmsKeyId: props.logEncryptionKey?.keyArn,
    });
    this.logGroup.cfnOptions.deletionPolicy = CfnDeletionPolicy.DELETE;
    this.logGroup.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.DELETE;

    this.lockTable = new dynamodb.CfnTable(this, 'LockTable', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [{ attributeName: 'target', attributeType: 'S' }],
      keySchema: [{ attributeName: 'target', keyType: 'HASH' }],
      timeToLiveSpecification: { attributeName: 'expires_at', enabled: true },
      sseSpecification: { sseEnabled: true },
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    });
    this.lockTable.cfnOptions.deletionPolicy = CfnDeletionPolicy.DELETE;
    this.lockTable.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.DELETE;
    skipCheckov(this.lockTable, [
      'CKV_AWS_119',
      'Encrypted at rest with the AWS-owned key: the items hold only policy digests, Sids and request ids, ' +
        'nothing a customer-managed key would protect further.',
    ]);

    this.deadLetterQueue = new sqs.CfnQueue(this, 'DeadLetterQueue', {
      sqsManagedSseEnabled: true,
      messageRetentionPeriod: DEAD_LETTER_RETENTION_SECONDS,
    });
    this.deadLetterQueue.cfnOptions.deletionPolicy = CfnDeletionPolicy.DELETE;
    this.deadLetterQueue.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.DELETE;
    skipCheckov(this.deadLetterQueue, [
      'CKV_AWS_27',
      'Encrypted at rest: SqsManagedSseEnabled (SSE-SQS), which this check predates and only recognises ' +
        'KmsMasterKeyId. A KMS key would add a key policy and KMS permissions to the role for no reader the ' +
        'SQS key does not already exclude.',
    ]);

    this.role = new iam.CfnRole(this, 'FunctionRole', {
      description: 'Execution role of the ecr-policy-provider function.',
      assumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
      policies: [
        {
          policyName: 'ecr-policies',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'RegistryPolicy',
                Effect: 'Allow',
                Action: ['ecr:GetRegistryPolicy', 'ecr:PutRegistryPolicy', 'ecr:DeleteRegistryPolicy', 'ecr:GetAccountSetting'],
                Resource: '*',
              },
              {
                Sid: 'RepositoryPolicy',
                Effect: 'Allow',
                Action: ['ecr:GetRepositoryPolicy', 'ecr:SetRepositoryPolicy', 'ecr:DeleteRepositoryPolicy'],
                Resource: Fn.sub('arn:${AWS::Partition}:ecr:*:${AWS::AccountId}:repository/*'),
              },
              {
                // A prefix statement (RepositoryPrefix) lists the repositories under its prefix.
                Sid: 'ListRepositories',
                Effect: 'Allow',
                Action: ['ecr:DescribeRepositories'],
                Resource: Fn.sub('arn:${AWS::Partition}:ecr:*:${AWS::AccountId}:repository/*'),
              },
              {
                // ... and sets the repositoryPolicy of the creation templates at or under it
                // (no resource type for these actions; never a customRoleArn, so no iam:PassRole).
                Sid: 'CreationTemplatePolicies',
                Effect: 'Allow',
                Action: ['ecr:DescribeRepositoryCreationTemplates', 'ecr:UpdateRepositoryCreationTemplate'],
                Resource: '*',
              },
            ],
          },
        },
        {
          policyName: 'lock',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              { Sid: 'LeaseAndRecord', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: this.lockTable.attrArn },
              {
                Sid: 'ReadRecordForDrift',
                Effect: 'Allow',
                Action: ['dynamodb:Query', 'dynamodb:Scan'],
                Resource: this.lockTable.attrArn,
              },
            ],
          },
        },
        {
          policyName: 'dead-letters',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              { Sid: 'SendFailedEvents', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: this.deadLetterQueue.attrArn },
            ],
          },
        },
        {
          policyName: 'logs',
          policyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'WriteOwnLogGroup',
                Effect: 'Allow',
                Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
                Resource: this.logGroup.attrArn,
              },
            ],
          },
        },
      ],
    });

    const code = new s3_assets.Asset(this, 'Code', { path: path.join(ASSETS_DIR, entry.file) });
    this.providerFunction = new lambda.CfnFunction(this, 'Function', {
      description: 'CloudFormation custom-resource provider for Amazon ECR registry and repository policies.',
      code: { s3Bucket: code.s3BucketName, s3Key: code.s3ObjectKey },
      handler: 'bootstrap',
      runtime: 'provided.al2023',
      architectures: [architecture.name],
      memorySize: 128,
      timeout: TIMEOUT_SECONDS,
      role: this.role.attrArn,
      deadLetterConfig: { targetArn: this.deadLetterQueue.attrArn },
      loggingConfig: {
        logGroup: this.logGroup.ref,
        logFormat: 'JSON',
        applicationLogLevel: 'INFO',
        systemLogLevel: 'WARN',
      },
      environment: {
        variables: {
          IAM_PROPAGATION_TIMEOUT_SECONDS: String(iamSeconds),
          PUBLIC_ACCESS: props.publicAccess ?? PublicAccess.BLOCK,
          POLICY_LOCK_TABLE: this.lockTable.ref,
          DRIFT_ACTION: props.driftAction ?? DriftAction.REPORT,
          FUNCTION_ROLE_ARN: this.role.attrArn,
          // Empty means unset; declared as template.yaml declares them (local testing hooks).
          AWS_ENDPOINT_URL: '',
          RESPONSE_URL_ALLOWED_HOSTS: '',
        },
      },
    });
    skipCheckov(this.providerFunction, 
      [
        'CKV_AWS_117',
        'No VPC: no inbound traffic and no data; it calls only the ECR API and the S3 response URL, both ' +
          'authenticated AWS endpoints.',
      ],
      [
        'CKV_AWS_173',
        "The environment variables are a number of seconds, Block or Allow, Report or Restore, the lock table's " +
          "name, the function's role ARN and two empty local-testing hooks, none a secret; Lambda encrypts them " +
          'at rest with an AWS-managed key.',
      ],
      [
        'CKV_AWS_115',
        "One invocation per custom-resource event; reserving concurrency would take from the account's pool " +
          'and fails in accounts at the minimum limit.',
      ],
    );
    code.addResourceMetadata(this.providerFunction, 'Code');

    // A prefix statement over more repositories than one invocation reaches continues in the
    // next invocation of this function, which it starts itself (template.yaml's ContinuePolicy):
    // lambda:InvokeFunction on the function, its versions and aliases, nothing else.
    new iam.CfnRolePolicy(this, 'ContinuePolicy', {
      roleName: this.role.ref,
      policyName: 'continue',
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'InvokeItself',
            Effect: 'Allow',
            Action: 'lambda:InvokeFunction',
            Resource: [this.providerFunction.attrArn, Fn.join('', [this.providerFunction.attrArn, ':*'])],
          },
        ],
      },
    });

    // Drift (docs/drift.md): ECR's policy calls through CloudTrail (and the creations that
    // bring a prefix statement's new targets, docs/properties.md), and the scheduled sweep.
    this.rule('FunctionPolicyCalls', {
      eventPattern: {
        'source': ['aws.ecr'],
        'detail-type': ['AWS API Call via CloudTrail'],
        'detail': {
          eventSource: ['ecr.amazonaws.com'],
          eventName: [
            'SetRepositoryPolicy',
            'DeleteRepositoryPolicy',
            'PutRegistryPolicy',
            'DeleteRegistryPolicy',
            'DeleteRepository',
            'CreateRepository',
            'CreateRepositoryCreationTemplate',
            'UpdateRepositoryCreationTemplate',
          ],
        },
      },
    });
    this.rule('FunctionDriftSweep', {
      description: 'Compares every policy the provider manages with its record.',
      scheduleExpression: props.driftSweepSchedule?.expressionString ?? DEFAULT_SCHEDULE,
    });

    this.driftAlarm = new cloudwatch.CfnAlarm(this, 'DriftAlarm', {
      alarmDescription:
        'A policy managed by ecr-policy-provider was changed out of band; its "policy drift" log line names ' +
        'the target, the statements and who made the change.',
      namespace: 'ECRPolicyProvider',
      metricName: 'DriftedTargets',
      dimensions: [{ name: 'FunctionName', value: this.providerFunction.ref }],
      statistic: 'Maximum',
      period: 300,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
      alarmActions: props.driftAlarmTopic ? [props.driftAlarmTopic.topicArn] : undefined,
    });

    this.serviceToken = this.providerFunction.attrArn;
    if (props.exportName !== undefined) {
      new CfnOutput(this, 'ServiceToken', {
        description: 'ARN of the ecr-policy-provider function, the ServiceToken of its custom resources.',
        value: this.serviceToken,
        exportName: props.exportName,
      });
    }
  }

  /** An EventBridge rule that invokes the function, and the permission it needs, as SAM makes them. */
  private rule(id: string, props: Omit<events.CfnRuleProps, 'targets'>): events.CfnRule {
    const rule = new events.CfnRule(this, id, {
      ...props,
      targets: [{ arn: this.providerFunction.attrArn, id: `${id}LambdaTarget` }],
    });
    new lambda.CfnPermission(this, `${id}Permission`, {
      action: 'lambda:InvokeFunction',
      functionName: this.providerFunction.ref,
      principal: 'events.amazonaws.com',
      sourceArn: rule.attrArn,
    });
    return rule;
  }
}

