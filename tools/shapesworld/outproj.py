"""ShapesWorld output projector: NExT-GPT's `TextFcLayer(mode="transformer")` scaled down
(MODELS.md §5.1). It maps the LLM's 4 image signal rows to the conditioning sequence the UNet
was trained on:

    x = h_signal + E_signal          [B, 4, W_llm]  (last-layer hidden states + input embeddings)
    x = fc(x)                        [B, 4, d]
    y = tfm(src=x, tgt=query_embs)   [B, L, d]      (nn.Transformer, pre-LN, no masks)
    out = model(y)                   [B, L, Dc]

Tensor names are NExT-GPT's sub-keys (`fc.*`, `query_embs`, `tfm.encoder.layers.N.*`,
`tfm.decoder.layers.N.*`, `tfm.{encoder,decoder}.norm.*`, `model.*`); its checkpoint stores them
under `gen_text_hidden_fcs.0.`.
"""
import torch
import torch.nn as nn


def outproj_config(in_dim, out_dim, num_queries, d_model=128, nhead=4, layers=2, dim_feedforward=512,
                   num_signal_tokens=4):
    return dict(in_dim=in_dim, out_dim=out_dim, num_queries=num_queries, d_model=d_model, nhead=nhead,
                num_encoder_layers=layers, num_decoder_layers=layers, dim_feedforward=dim_feedforward,
                activation='relu', dropout=0.0, norm_first=True, layer_norm_eps=1e-5,
                num_signal_tokens=num_signal_tokens)


class TextFcLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        c = config
        d = c['d_model']
        self.fc = nn.Linear(c['in_dim'], d)
        self.tfm = nn.Transformer(d_model=d, nhead=c['nhead'], num_encoder_layers=c['num_encoder_layers'],
                                  num_decoder_layers=c['num_decoder_layers'],
                                  dim_feedforward=c['dim_feedforward'], dropout=c['dropout'],
                                  layer_norm_eps=c['layer_norm_eps'], batch_first=True,
                                  norm_first=c['norm_first'])
        self.model = nn.Linear(d, c['out_dim'])
        self.query_embs = nn.Parameter(torch.randn(1, c['num_queries'], d) * 0.02)

    def forward(self, h_signal, e_signal):
        """h_signal [B,4,W_llm], e_signal [4,W_llm] → conditioning [B,L,Dc]."""
        x = self.fc(h_signal + e_signal)
        return self.model(self.tfm(x, self.query_embs.expand(x.shape[0], -1, -1)))
