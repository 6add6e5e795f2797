/* test_config_check.c — validation of a configuration: every range and
 * rule, one value past it each, and the values at its edges. */
#include <string.h>

#include "format/config.h"
#include "test.h"

static void test_validate(void)
{
    static const struct {
        const char *kv[2];
        const char *want;
    } cases[] = {
        {{"embedding_dim=0"}, "key 'embedding_dim' must be at least 1, got 0"},
        {{"n_experts=-1"}, "key 'n_experts'"},
        {{"n_expert_layers=0"}, "key 'n_expert_layers'"},
        {{"expert_n_layers=0"}, "key 'expert_n_layers'"},
        {{"expert_width=0"}, "key 'expert_width'"},
        {{"tower_layers=[64, 0]"}, "key 'tower_layers' item 2 must be at least 1"},
        {{"dropout=1"}, "key 'dropout' must be in [0, 1), got 1"},
        {{"dropout=-0.1"}, "key 'dropout'"},
        {{"ops=[]"}, "key 'ops' needs at least one op"},
        {{"ops=[Identity, MLP-0]"}, "key 'ops' has unknown op 'MLP-0'"},
        {{"ops=MLP-65537"}, "key 'ops' has unknown op 'MLP-65537'"},
        {{"ops=MLP-016"}, "key 'ops' has unknown op 'MLP-016'"},
        {{"ops=[MLP-, Identity]"}, "unknown op 'MLP-'"},
        {{"ops=identity"}, "unknown op 'identity'"},
        {{"ops=[MLP-16, Zero, MLP-16]"}, "key 'ops' lists 'MLP-16' twice"},
        {{"ops=Zero"}, "key 'ops' needs an op other than Zero"},
        {{"gate_mode=always"}, "key 'gate_mode' must be one of sample, reference"},
        {{"batch_size=1"}, "key 'batch_size' must be at least 2"},
        {{"lr=0"}, "key 'lr' must be > 0"},
        {{"lr=-1e-3"}, "key 'lr'"},
        {{"weight_decay=-1e-5"}, "key 'weight_decay' must be >= 0"},
        {{"arch_lr=0"}, "key 'arch_lr'"},
        {{"arch_weight_decay=-1"}, "key 'arch_weight_decay'"},
        {{"clip_grad_norm=-5"}, "key 'clip_grad_norm'"},
        {{"threads=-1"}, "key 'threads' must be at least 0"},
        {{"device=gpu"}, "key 'device' must be one of cpu, cuda, auto, cpu-backend, cpu-plain; got 'gpu'"},
        {{"task_weights=[1, -1]"}, "key 'task_weights' item 2 must be >= 0"},
        {{"task_conditions=ctr"}, "key 'task_conditions' wants entries task=cond, got 'ctr'"},
        {{"task_conditions==x"}, "key 'task_conditions'"},
        {{"task_conditions=ctr="}, "key 'task_conditions'"},
        {{"task_conditions=a=b=c"}, "key 'task_conditions'"},
        {{"task_conditions=[a=b, a=c]"}, "key 'task_conditions' has two conditions for task 'a'"},
        {{"epochs=-1"}, "key 'epochs'"},
        {{"warmup_epochs=-1"}, "key 'warmup_epochs'"},
        {{"full_arch_train_epochs=-1"}, "key 'full_arch_train_epochs'"},
        {{"discretize_ops=-1"}, "key 'discretize_ops'"},
        {{"patience=0"}, "key 'patience' must be at least 1"},
        {{"format=parquet"}, "key 'format' must be one of processed, csv, userbehavior, "
                             "ijcai15, kuairand, qb-video; got 'parquet'"},
        {{"sparse=[a, b, a]"}, "key 'sparse' lists 'a' twice"},
        {{"sparse=[a, b]", "labels=[c, b]"}, "key 'labels' lists column 'b', which is in "
                                             "'sparse' too"},
        {{"delimiter="}, "key 'delimiter' must be one character"},
        {{"delimiter=ab"}, "key 'delimiter'"},
        {{"split=[0.5, 0.5]"}, "key 'split' wants 3 fractions"},
        {{"split=[0.8, 0.3, -0.1]"}, "key 'split' item 3 must be >= 0"},
        {{"split=[0.8, 0.1, 0.2]"}, "key 'split' must sum to 1"},
        {{"vocab=some"}, "key 'vocab' must be one of all, train"},
        {{"limit=-1"}, "key 'limit'"},
        {{"min_count=-1"}, "key 'min_count'"},
        {{"export_candidates=[0.5, 1]"}, "key 'export_candidates' item 2 must be in (0, 1)"},
        {{"export_candidates=[0.45, 0.45]"}, "key 'export_candidates' item 2 repeats 0.45"},
        {{"recompute_hidden=true", "device=cuda"},
         "key 'recompute_hidden' applies to the CPU device only, not device cuda"},
        {{"recompute_hidden=true", "device=cpu-plain"}, "key 'recompute_hidden'"},
    };
    amtl_status st = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        amtl_config c;
        CHECK_OK(amtl_config_defaults(&c, &st), &st);
        for (int j = 0; j < 2 && cases[i].kv[j]; j++)
            CHECK_OK(amtl_config_set_kv(&c, cases[i].kv[j], &st), &st);
        int rc = amtl_config_validate(&c, &st);
        amtl_config_free(&c);
        CHECKF(rc < 0, "%s passed validation", cases[i].kv[0]);
        CHECKF(st.code == AMTL_EUSAGE && strstr(st.msg, cases[i].want), "%s: got '%s'",
               cases[i].kv[0], st.msg);
    }

    /* the edges of each range are valid */
    static const char *const good[] = {
        "dropout=0", "dropout=0.999", "batch_size=2", "patience=1", "epochs=0",
        "warmup_epochs=0", "discretize_ops=0", "threads=0", "weight_decay=0",
        "split=[1, 0, 0]", "split=[0.6, 0.2, 0.2]", "ops=[Zero, MLP-65536, Identity, MLP-1]",
        "tower_layers=[]", "task_weights=[0, 2]", "task_conditions=[buy=click, ctr=view]",
        "delimiter=|", "delimiter=\t", "device=auto", "gate_mode=reference",
        "vocab=train", "format=qb-video", "min_count=0", "limit=0",
        "labels=[click, buy]", "export_candidates=[]", "export_candidates=[0.01, 0.99]",
        "recompute_hidden=true", "linear_candidate=false"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        amtl_config c;
        CHECK_OK(amtl_config_defaults(&c, &st), &st);
        CHECK_OK(amtl_config_set_kv(&c, good[i], &st), &st);
        int rc = amtl_config_validate(&c, &st);
        amtl_config_free(&c);
        CHECKF(rc == 0, "%s: %s", good[i], st.msg);
    }

    /* a zeroed config is invalid, not a crash */
    amtl_config z;
    memset(&z, 0, sizeof z);
    CHECK(amtl_config_validate(&z, &st) < 0 && st.code == AMTL_EUSAGE);
    CHECKF(strstr(st.msg, "key 'embedding_dim'") != NULL, "%s", st.msg);
}

int main(void)
{
    RUN(test_validate);
    TEST_MAIN_END();
}
