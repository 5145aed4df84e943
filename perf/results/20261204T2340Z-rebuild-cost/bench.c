/* Rebuild cost: P partitions with one 64-byte event each in 64 MiB segments;
 * bus dir removed; time and rchar of bus open + producer open + one sync publish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "evbus.h"
static unsigned long long rchar(void){FILE*f=fopen("/proc/self/io","r");char l[128];unsigned long long v=0;while(fgets(l,sizeof l,f))if(sscanf(l,"rchar: %llu",&v)==1)break;fclose(f);return v;}
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){
  const char*bus=argv[1],*data=argv[2];int dur=atoi(argv[3]);unsigned parts=atoi(argv[4]);const char*phase=argv[5];
  evb_bus*b;evb_bus_options o={.data_dir=data};evb_producer*p;evb_producer_options po={.block_ms=-1};
  char v[64];memset(v,'x',64);
  if(!strcmp(phase,"make")){
    if(evb_bus_open(&b,bus,&o)){fprintf(stderr,"open %s\n",evb_last_error());return 1;}
    evb_topic_config tc={.partitions=parts,.ring_bytes=64<<10,.segment_bytes=64ull<<20,.durability=dur,.max_event_bytes=4096};
    if(evb_topic_create(b,"t",&tc)){fprintf(stderr,"create %s\n",evb_last_error());return 1;}
    if(evb_producer_open(&p,b,"t",&po))return 1;
    for(unsigned i=0;i<parts;i++){evb_msg m={.value=v,.value_len=64,.partition=(int32_t)i,.flags=EVB_MSG_SYNC};if(evb_publish(p,&m)){fprintf(stderr,"pub %s\n",evb_last_error());return 1;}}
    evb_producer_close(p);evb_bus_close(b);return 0;}
  unsigned long long r0=rchar();double t0=now();
  if(evb_bus_open(&b,bus,&o)){fprintf(stderr,"open %s\n",evb_last_error());return 1;}
  if(evb_producer_open(&p,b,"t",&po)){fprintf(stderr,"popen %s\n",evb_last_error());return 1;}
  evb_msg m={.value=v,.value_len=64,.partition=0,.flags=EVB_MSG_SYNC};
  if(evb_publish(p,&m)){fprintf(stderr,"pub %s\n",evb_last_error());return 1;}
  double t1=now();unsigned long long r1=rchar();
  printf("%s parts=%u rchar=%llu wall=%.3f\n",dur==2?"sync":"async",parts,r1-r0,t1-t0);
  evb_producer_close(p);evb_bus_close(b);return 0;}
