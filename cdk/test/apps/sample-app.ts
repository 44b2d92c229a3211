// The sample app of the end-to-end test (tests/e2e/test_cdk.py): an imported repository with
// two grants, a registry replication statement, and a whole repository policy with adopt.
//
//   node cdk/test-out/apps/sample-app.js <outdir> [v1|v2]
//
// v2 is the same app after an edit that changes grantees: the pull grant goes to another
// account (a new Sid, so CloudFormation creates the new statement and deletes the old), the
// replication statement and the whole policy name another principal (updates in place).
import { App, CfnOutput, Stack, aws_ecr as ecr, aws_iam as iam } from 'aws-cdk-lib';
import {
  EcrPolicyProvider,
  RegistryPolicyStatement,
  RepositoryPolicy,
  RepositoryPolicyGrants,
} from '../../lib';

/** The account and region of the rig's moto, and the accounts the app grants to. */
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
const GRANTEES = {
  v1: { pull: '111122223333', replication: '444455556666', legacy: '777788889999' },
  v2: { pull: '222233334444', replication: '555566667777', legacy: '888899990000' },
};

export function sampleApp(outdir: string, version: 'v1' | 'v2'): App {
  const grantees = GRANTEES[version];
  const app = new App({ outdir });
  const stack = new Stack(app, 'Sample', { env: { account: ACCOUNT, region: REGION } });
  const provider = EcrPolicyProvider.fromServiceToken(
    stack,
    'Provider',
    `arn:aws:lambda:${REGION}:${ACCOUNT}:function:ecr-policy-provider`,
  );

  // Grants on a repository this app does not own: a pull for one account, pull and push for
  // a role of another.
  const repository = ecr.Repository.fromRepositoryName(stack, 'App', 'app');
  const grants = RepositoryPolicyGrants.fromRepository(repository, provider);
  grants.pull(new iam.AccountPrincipal(grantees.pull));
  grants.pullPush(new iam.ArnPrincipal('arn:aws:iam::999911112222:role/ci'));

  const replication = new RegistryPolicyStatement(stack, 'TeamReplication', {
    provider,
    statement: new iam.PolicyStatement({
      sid: 'ReplicationFromTeam',
      principals: [new iam.AccountPrincipal(grantees.replication)],
      actions: ['ecr:CreateRepository', 'ecr:ReplicateImage'],
      resources: [`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/team/*`],
    }),
  });

  const legacy = new RepositoryPolicy(stack, 'LegacyPolicy', {
    provider,
    repository: ecr.Repository.fromRepositoryName(stack, 'Legacy', 'legacy'),
    adopt: true,
    policyDocument: new iam.PolicyDocument({
      statements: [
        new iam.PolicyStatement({
          sid: 'LegacyPull',
          principals: [new iam.AccountPrincipal(grantees.legacy)],
          actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
        }),
      ],
    }),
  });
  // Every attribute the two constructs offer, so that the test reads each from the
  // provider's response (an attribute the provider does not return fails a deployment).
  const attributes = {
    ReplicationRegistryId: replication.registryId,
    ReplicationRegion: replication.region,
    ReplicationAdopted: replication.adopted,
    ReplicationAccess: replication.access,
    ReplicationSids: replication.sids,
    LegacyRegistryId: legacy.registryId,
    LegacyRegion: legacy.region,
    LegacyAdopted: legacy.adopted,
    LegacyAccess: legacy.access,
    LegacyPolicyText: legacy.policyText,
    LegacyRepositoryName: legacy.repositoryName,
    LegacyRepositoryArn: legacy.repositoryArn,
  };
  for (const [name, value] of Object.entries(attributes)) {
    new CfnOutput(stack, name, { value });
  }
  return app;
}

if (require.main === module) {
  const [outdir, version = 'v1'] = process.argv.slice(2);
  if (!outdir || (version !== 'v1' && version !== 'v2')) {
    console.error('usage: node sample-app.js <outdir> [v1|v2]');
    process.exit(2);
  }
  sampleApp(outdir, version).synth();
}
