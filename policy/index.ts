// GourmetGram's policy pack: `pulumi preview --policy-pack policy` (from the repository root).
import { PolicyPack } from '@pulumi/policy';
import { policies } from './rules';

new PolicyPack('gourmetgram', { policies });
